// Written for Shoal's benchmark against Argo Workflows (hack/argo/build.sh): the
// published github.com/argoproj/argo-workflows/v4 module lacks this file, so argoexec
// does not build on Linux from it. The emissary runs the user's command in a process
// group of its own (Setpgid), forwards signals to that group (Kill) and turns the
// command's end into Argo's exit error (Wait: a plain wait on the child, which the
// emissary started itself; a signal counts as 128+signal, as a shell reports it).

package osspecific

import (
	"os"
	"syscall"

	"github.com/argoproj/argo-workflows/v4/util/errors"
)

// Term is the signal that asks the user's process to stop.
var Term = syscall.SIGTERM

// CanIgnoreSignal says which forwarded signals the emissary does not pass on.
func CanIgnoreSignal(s os.Signal) bool {
	return s == syscall.SIGCHLD || s == syscall.SIGURG
}

// Kill signals the process group of pid (the user's command and its children).
func Kill(pid int, s syscall.Signal) error {
	if pgid, err := syscall.Getpgid(pid); err == nil {
		return syscall.Kill(-pgid, s)
	}
	return syscall.Kill(pid, s)
}

// Setpgid starts the user's command in a process group of its own.
func Setpgid(a *syscall.SysProcAttr) {
	a.Setpgid = true
}

// Wait waits for the user's command and turns its end into Argo's exit error.
func Wait(process *os.Process) error {
	state, err := process.Wait()
	if err != nil {
		return err
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return errors.NewExitErr(128 + int(ws.Signal()))
	}
	if code := state.ExitCode(); code != 0 {
		return errors.NewExitErr(code)
	}
	return nil
}
