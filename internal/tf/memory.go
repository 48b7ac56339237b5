package tf

// #include <malloc.h>
import "C"

// TrimHeap gives the C heap's free memory back to the operating system (glibc's
// malloc_trim). TensorFlow allocates a session's graph, kernels and buffers with
// malloc from many threads; after a model version is unloaded and its graph
// collected, that memory is free but stays mapped in glibc's arenas, so the process's
// RSS would creep up with every load/unload cycle. Call it after an unload.
func TrimHeap() {
	C.malloc_trim(0)
}
