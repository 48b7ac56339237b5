//go:build race

package tf

// raceEnabled reports a -race build.
const raceEnabled = true
