package cputime

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limit reads this process's CFS bandwidth limit from its cgroup: the
// quota as a fraction of a core and the period (ok false when there is
// none or it cannot be read, e.g. where /sys is not the host's).
func Limit() (quota float64, period time.Duration, ok bool) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// v1: "4:cpu,cpuacct:/path"; v2: "0::/path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			if q, p, ok := readV2(filepath.Join("/sys/fs/cgroup", parts[2], "cpu.max")); ok {
				return q, p, true
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "cpu" {
				continue
			}
			for _, mnt := range []string{"cpu", "cpu,cpuacct", "cpuacct,cpu"} {
				dir := filepath.Join("/sys/fs/cgroup", mnt, parts[2])
				if q, p, ok := readV1(dir); ok {
					return q, p, true
				}
			}
		}
	}
	return 0, 0, false
}

// readV2 parses cgroup v2 cpu.max: "QUOTA PERIOD" in µs, or "max PERIOD".
func readV2(file string) (float64, time.Duration, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, false
	}
	fs := strings.Fields(string(b))
	if len(fs) != 2 || fs[0] == "max" {
		return 0, 0, false
	}
	return ratio(fs[0], fs[1])
}

// readV1 reads cgroup v1 cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
func readV1(dir string) (float64, time.Duration, bool) {
	q, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, 0, false
	}
	p, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, 0, false
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(quotaUS, periodUS string) (float64, time.Duration, bool) {
	q, err1 := strconv.ParseInt(quotaUS, 10, 64)
	p, err2 := strconv.ParseInt(periodUS, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, 0, false
	}
	return float64(q) / float64(p), time.Duration(p) * time.Microsecond, true
}
