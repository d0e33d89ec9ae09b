package wl

import (
	"syscall"
	"time"
	"unsafe"
)

// TimerFD returns a CLOCK_MONOTONIC timerfd armed to fire once after d.
// A read(2) of it blocks in the kernel until then and returns 8 bytes:
// the kernel itself ends the block, no Go code has to run for it.
func TimerFD(d time.Duration) (int, error) {
	const tfdCloexec = syscall.O_CLOEXEC
	fd, _, e := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, 1 /* CLOCK_MONOTONIC */, tfdCloexec, 0)
	if e != 0 {
		return -1, e
	}
	spec := [4]int64{0, 0, int64(d / time.Second), int64(d % time.Second)} // interval, value
	if spec[2] == 0 && spec[3] == 0 {
		spec[3] = 1
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); e != 0 {
		syscall.Close(int(fd))
		return -1, e
	}
	return int(fd), nil
}
