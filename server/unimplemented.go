package server

import "fmt"

// Every RPC of the v1 API is served now; what remains here is shared by the handlers.

// errMissing is the error for a required field left empty.
func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", errInvalidRequest, field)
}
