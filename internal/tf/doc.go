// Package tf is Atelier's only door to TensorFlow: it loads SavedModels, reads their
// signatures, runs them and converts tensors, and it is the only package that imports
// cgo or the TensorFlow Go bindings (github.com/galeone/tensorflow/tensorflow/go and
// github.com/galeone/tfgo). Everything it exports is plain Go: a tensor.Tensor holds a flat Go
// slice, errors are Go errors, and panics from the bindings or tfgo are recovered
// into errors before they leave the package.
//
// Tensors cross the boundary by memcpy (no reflection), and every TensorFlow tensor
// the package creates or receives is deleted as soon as it is converted instead of
// waiting for the bindings' finalizers, so memory use under load does not depend on
// the garbage collector.
//
// Build and test after sourcing scripts/tfenv.sh, which points cgo at the TensorFlow C
// library in the project's virtual environment.
package tf
