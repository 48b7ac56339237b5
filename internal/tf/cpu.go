package tf

// #include <unistd.h>
import "C"

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is the unit of the CPU times in /proc/<pid>/task/<tid>/stat.
var clockTick = time.Second / time.Duration(max(int64(C.sysconf(C._SC_CLK_TCK)), 1))

// SessionCPU is the CPU time the process has spent running TensorFlow sessions: the
// time Go's threads spent inside session runs (TensorFlow runs some ops on the calling
// thread) plus all the time of TensorFlow's own threads (its inter- and intra-op
// pools; loading a session on them counts too). Process CPU minus this is the
// server's own work: gRPC, decoding, batching, copies, garbage collection.
func SessionCPU() time.Duration {
	return time.Duration(callerCPU.Load()) + poolCPU()
}

// poolCPU sums user and system CPU over TensorFlow's own threads; 0 where /proc
// cannot be read. Those threads are told apart by their signal mask: every one of them
// was started inside withoutProfSignal and so blocks SIGPROF for good, while a Go
// thread blocks it only inside withoutProfSignal, which records it in goCallers first.
// (Their names do not tell: some are tf_*, others carry the program's name.)
func poolCPU() time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	var total time.Duration
	for _, task := range tasks {
		tid, err := strconv.Atoi(filepath.Base(task))
		if err != nil || isGoCaller(tid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil || !blocksSIGPROF(status) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(task, "stat"))
		if err != nil {
			continue
		}
		total += statCPU(stat)
	}
	return total
}

// blocksSIGPROF reads the SigBlk mask of a /proc/<pid>/task/<tid>/status file.
func blocksSIGPROF(status []byte) bool {
	_, rest, ok := bytes.Cut(status, []byte("\nSigBlk:"))
	if !ok {
		return false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	mask, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 64)
	return err == nil && mask&(1<<(uint(unix.SIGPROF)-1)) != 0
}

// statCPU reads utime + stime from a /proc/<pid>/task/<tid>/stat line. The command
// name, field 2, may hold spaces and parentheses, so fields are counted from the last
// ')': utime and stime are fields 14 and 15.
func statCPU(stat []byte) time.Duration {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(stat[i+1:]) // field 3 onwards
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * clockTick
}
