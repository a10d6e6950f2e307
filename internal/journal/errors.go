package journal

import "errors"

// The errors of the protocol, which package federated exports under the
// same names; their doc comments are there.
var (
	ErrPeriodDropped = errors.New("federated: period dropped")
	ErrWrongType     = errors.New("federated: key holds another type")
	ErrTemporary     = errors.New("federated: server cannot take the write now")
)
