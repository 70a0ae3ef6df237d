package candidate

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseUsesTheProgramDefaultsAndTuned(t *testing.T) {
	opts, err := Parse("t", "", ArticleDefaults, []string{"--name", "node01"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Key != "service/monitoring/leader" || opts.TTL != 10*time.Second ||
		opts.Behavior != "delete" || opts.LockDelay != 15*time.Second || opts.BindCheck ||
		opts.CheckInterval != 10*time.Second || opts.CheckTimeout() != 2*time.Second || opts.ReadyFD != -1 {
		t.Errorf("article defaults: %+v", opts)
	}
	tuned, err := Parse("t", "", ArticleDefaults,
		[]string{"--name=n", "--tuned", "--ttl", "1s", "--check-interval", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !tuned.BindCheck || tuned.LockDelay != 0 || !tuned.LockDelaySet || tuned.CheckInterval != 2*time.Second ||
		tuned.TTL != time.Second || !tuned.TTLSet {
		t.Errorf("--tuned with explicit options: %+v", tuned)
	}
	unbound, _ := Parse("t", "", ArticleDefaults, []string{"--name=n", "--tuned", "--no-bind-check"}, io.Discard)
	if unbound.BindCheck {
		t.Errorf("--no-bind-check did not win over --tuned")
	}
}

func TestParseRefusesWhatThePythonNodeRefuses(t *testing.T) {
	for _, args := range [][]string{
		{},                                     // no name
		{"--name", "-bad"},                     // name
		{"--name", "n", "--service", "a/b"},    // service
		{"--name", "n", "--ttl", "0s"},         // ttl
		{"--name", "n", "--ttl", "25h"},        // ttl
		{"--name", "n", "--ttl", "ten"},        // not a duration
		{"--name", "n", "--lock-delay", "61s"}, // lock-delay cap
		{"--name", "n", "--check-interval", "500ms"},
		{"--name", "n", "--behavior", "explode"},
		{"--name", "n", "--write-interval", "0s"},
		{"--name", "n", "--bind-check", "--no-bind-check"},
		{"--name", "n", "--frobnicate"},
		{"--name", "n", "extra"},
	} {
		if _, err := Parse("t", "", ArticleDefaults, args, io.Discard); err == nil {
			t.Errorf("Parse(%q) accepted it", args)
		}
	}
}

func TestEventLinesHaveThePythonFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.events.jsonl")
	log, err := OpenEventLog(path, "node01")
	if err != nil {
		t.Fatal(err)
	}
	log.Emit("elected", 42, "5c0e", "holds it")
	log.Emit("started", 0, "", "pid 1")
	log.Close()
	log.Emit("dropped", 0, "", "after close")
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	if !strings.HasPrefix(lines[0], `{"time":`) ||
		!strings.HasSuffix(lines[0], `,"node":"node01","event":"elected","token":42,"session":"5c0e","detail":"holds it"}`) {
		t.Errorf("line = %s", lines[0])
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second["token"] != nil || second["session"] != nil || second["event"] != "started" {
		t.Errorf("nulls: %v", second)
	}
	if stamp := second["time"].(float64); time.Since(time.Unix(int64(stamp), 0)) > time.Minute {
		t.Errorf("time %v is not wall-clock seconds", stamp)
	}
}

func TestNextIndexFollowsConsulsRules(t *testing.T) {
	for _, c := range []struct{ previous, returned, want uint64 }{
		{0, 0, 1}, {0, 7, 7}, {7, 7, 7}, {7, 9, 9}, {9, 3, 0},
	} {
		if got := NextIndex(c.previous, c.returned); got != c.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", c.previous, c.returned, got, c.want)
		}
	}
}
