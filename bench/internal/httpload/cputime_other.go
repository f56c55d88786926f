//go:build !unix

package httpload

// processCPU is zero where the harness does not read the process's CPU
// time: the cpu/req column then stays empty.
func processCPU() int64 { return 0 }
