// Empty on purpose: an assembly file in the package lets wl.go declare
// bodyless functions bound with //go:linkname (runtime.nanotime, procPin).
