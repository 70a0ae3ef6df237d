package candidate

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults are a program's own defaults for the session and its check; flags win.
type Defaults struct {
	TTL           time.Duration
	Behavior      string // "" = leave it to Consul (release)
	LockDelay     time.Duration
	CheckInterval time.Duration
}

// ArticleDefaults are the article's configuration, the same as python -m elect_helpers.node:
// TTL 10s, behaviour delete, lock-delay 15s, a 10s HTTP check, the session not bound to it.
var ArticleDefaults = Defaults{
	TTL: 10 * time.Second, Behavior: "delete", LockDelay: 15 * time.Second,
	CheckInterval: 10 * time.Second,
}

// Options is a validated command line, with the flags of python -m elect_helpers.node so
// that elect_helpers.cluster.Cluster can start either kind of node the same way.
type Options struct {
	Name             string
	Service          string
	Key              string
	TTL              time.Duration
	TTLSet           bool // given on the command line
	Behavior         string
	LockDelay        time.Duration
	LockDelaySet     bool // given on the command line (or by --tuned)
	CheckInterval    time.Duration
	BindCheck        bool
	Events           string
	Resource         string
	UnfencedResource string
	WriteInterval    time.Duration
	ReadyFD          int // -1: none
}

// CheckTimeout is the HTTP check's timeout: 2s, or the interval when that is shorter.
func (o Options) CheckTimeout() time.Duration {
	return min(2*time.Second, o.CheckInterval)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

const (
	maxTTL       = 24 * time.Hour   // Consul's structs.SessionTTLMax
	maxLockDelay = 60 * time.Second // Consul's structs.MaxLockDelay
	minInterval  = time.Second      // Consul raises shorter check intervals to 1s
)

// durationFlag is a Go duration flag that remembers whether it was given.
type durationFlag struct {
	value time.Duration
	set   bool
}

func (d *durationFlag) String() string { return d.value.String() }

func (d *durationFlag) Set(text string) error {
	value, err := time.ParseDuration(text)
	if err != nil {
		return errors.New("use a Go duration such as 10s, 1.5s or 500ms")
	}
	d.value, d.set = value, true
	return nil
}

// Parse reads a command line (without the program name). It returns an error with one
// line saying what to change; -h/--help returns flag.ErrHelp after printing the usage to out.
func Parse(program, about string, defaults Defaults, args []string, out io.Writer) (Options, error) {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "node name, also its service ID (required)")
	service := fs.String("service", "monitoring", "service name")
	key := fs.String("key", "", "leader key (default service/<service>/leader)")
	ttl := &durationFlag{value: defaults.TTL}
	fs.Var(ttl, "ttl", "session TTL, a Go duration")
	behavior := fs.String("behavior", defaults.Behavior, "session behaviour: delete or release")
	lockDelay := &durationFlag{value: defaults.LockDelay}
	fs.Var(lockDelay, "lock-delay", "session lock-delay, 0s to 60s")
	interval := &durationFlag{value: defaults.CheckInterval}
	fs.Var(interval, "check-interval", "HTTP health-check interval (at least 1s)")
	bind := fs.Bool("bind-check", false, "bind the session to the node's service check")
	noBind := fs.Bool("no-bind-check", false, "do not bind the session to the check (default)")
	tuned := fs.Bool("tuned", false, "bound to the check, 1s check interval, lock-delay 0")
	events := fs.String("events", "", "append JSON-line events to this file (default stdout)")
	resource := fs.String("resource", "", "fenced resource URL to write to while leading")
	unfenced := fs.String("unfenced-resource", "", "unfenced resource URL to write to as well")
	writeInterval := &durationFlag{value: 150 * time.Millisecond}
	fs.Var(writeInterval, "write-interval", "pause between a leader's writes")
	readyFD := fs.Int("ready-fd", -1, "write \"ready\" to this file descriptor once registered")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "Usage: %s --name NAME [flags]\n%s\n\nFlags:\n", program, about)
			fs.SetOutput(out)
			fs.PrintDefaults()
			return Options{}, err
		}
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q; every option is a --flag", fs.Arg(0))
	}
	if *bind && *noBind {
		return Options{}, errors.New("give --bind-check or --no-bind-check, not both")
	}
	opts := Options{
		Name: *name, Service: *service, Key: *key, TTL: ttl.value, TTLSet: ttl.set, Behavior: *behavior,
		LockDelay: lockDelay.value, LockDelaySet: lockDelay.set, CheckInterval: interval.value,
		BindCheck: *bind, Events: *events, Resource: *resource, UnfencedResource: *unfenced,
		WriteInterval: writeInterval.value, ReadyFD: *readyFD,
	}
	if *tuned { // the Python node's --tuned; options given explicitly still win
		if !interval.set {
			opts.CheckInterval = time.Second
		}
		if !lockDelay.set {
			opts.LockDelay, opts.LockDelaySet = 0, true
		}
		opts.BindCheck = !*noBind
	}
	return opts, opts.validate()
}

func (o *Options) validate() error {
	if !validName.MatchString(o.Name) {
		return fmt.Errorf("--name %q: use 1-63 letters, digits, '.', '_' or '-', "+
			"starting with a letter or digit", o.Name)
	}
	if o.Service == "" || strings.Contains(o.Service, "/") {
		return fmt.Errorf("--service %q: give a service name without '/'", o.Service)
	}
	if o.Key == "" {
		o.Key = "service/" + o.Service + "/leader"
	} else if strings.HasPrefix(o.Key, "/") {
		return fmt.Errorf("--key %q: a KV key must not start with '/'", o.Key)
	}
	if o.TTL <= 0 || o.TTL > maxTTL {
		return fmt.Errorf("--ttl %s: must be above 0 and at most 24h", o.TTL)
	}
	if o.Behavior != "" && o.Behavior != "delete" && o.Behavior != "release" {
		return fmt.Errorf("--behavior %q: use delete or release", o.Behavior)
	}
	if o.LockDelay < 0 || o.LockDelay > maxLockDelay {
		return fmt.Errorf("--lock-delay %s: must be between 0s and 60s "+
			"(Consul caps lock-delay at 60s)", o.LockDelay)
	}
	if o.CheckInterval < minInterval {
		return fmt.Errorf("--check-interval %s: must be at least 1s "+
			"(Consul raises shorter check intervals to 1s)", o.CheckInterval)
	}
	if o.WriteInterval <= 0 {
		return fmt.Errorf("--write-interval %s: must be above 0", o.WriteInterval)
	}
	return nil
}

// ParseOrExit parses os.Args; a bad command line prints one line and exits 2, like the
// Python node, and --help prints the usage and exits 0.
func ParseOrExit(program, about string, defaults Defaults) Options {
	opts, err := Parse(program, about, defaults, os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", program, err)
		os.Exit(2)
	}
	return opts
}
