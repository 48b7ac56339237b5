package models

import (
	"fmt"
	"time"
)

// State is where a version is in its lifecycle:
//
//	LOADING -> WARMING -> AVAILABLE -> UNLOADING -> (gone)
//	LOADING or WARMING -> FAILED (retried when the folder changes)
type State int

// The states; the numbers match atelier.v1.VersionState.
const (
	StateLoading   State = 1
	StateWarming   State = 2
	StateAvailable State = 3
	StateUnloading State = 4
	StateFailed    State = 5
)

// String returns the state's name, as the API spells it without its prefix.
func (s State) String() string {
	switch s {
	case StateLoading:
		return "LOADING"
	case StateWarming:
		return "WARMING"
	case StateAvailable:
		return "AVAILABLE"
	case StateUnloading:
		return "UNLOADING"
	case StateFailed:
		return "FAILED"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// VersionStatus is one version's state, its error if FAILED, and its times.
type VersionStatus struct {
	Version       int64
	State         State
	Err           error
	StateTime     time.Time
	LoadStart     time.Time
	AvailableTime time.Time
	Pinned        bool
}

// ModelStatus is one model's versions (newest first), policy and labels.
type ModelStatus struct {
	Name     string
	Role     Role
	Policy   Policy
	Labels   map[string]int64
	Versions []VersionStatus
}
