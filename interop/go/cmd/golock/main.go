// Command golock is a candidate built on HashiCorp's api.Lock: LockOpts with nothing but
// the key and a value naming the node, so the lock runs with its documented defaults
// (session "Consul API Lock" with TTL 15s, behaviour release and Consul's 15s lock-delay,
// 15s lock waits, no monitor retries), unless flags ask for the short demo TTLs an agent
// with a low session_ttl_min allows. Lock() blocks until the lock is ours; the channel it
// returns closes when the lock is lost; Unlock() releases it and makes RenewPeriodic
// destroy the session.
//
// It takes the agent address from CONSUL_HTTP_ADDR and has the flags and JSON-line events
// of python -m elect_helpers.node, so it can run in an elect_helpers.cluster.Cluster next to
// Python nodes and the article program.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/candidate"
)

const about = `A leader-election candidate built on HashiCorp's api.Lock.
Without flags the lock uses its documented defaults (session TTL 15s, lock-delay 15s);
--ttl, --lock-delay, --behavior and --bind-check change the lock's session.
The agent address comes from CONSUL_HTTP_ADDR (default 127.0.0.1:8500).
SIGTERM steps down gracefully; SIGKILL is a crash; SIGSTOP/SIGCONT a pause.`

const (
	errorBackoffFirst = 100 * time.Millisecond
	errorBackoffMax   = 5 * time.Second
	destroyWait       = 2 * time.Second
)

// lockDefaults are api.Lock's own: DefaultLockSessionTTL, Consul's default lock-delay,
// Consul's default behaviour (release), and the Python node's check interval.
var lockDefaults = candidate.Defaults{TTL: 15 * time.Second, LockDelay: 15 * time.Second,
	CheckInterval: 10 * time.Second}

func main() {
	opts := candidate.ParseOrExit("golock", about, lockDefaults)
	spy := &sessionSpy{base: http.DefaultTransport, destroyed: map[string]chan struct{}{}}
	candidate.Main(opts, &golock{spy: spy}, func(config *api.Config) {
		config.HttpClient = &http.Client{Transport: spy}
	})
}

type golock struct {
	spy     *sessionSpy
	lock    *api.Lock
	held    bool
	session string // the session of the lock while held
}

// lockOptions: only what the flags change is set; the rest is api.Lock's defaults.
func lockOptions(n *candidate.Node) *api.LockOptions {
	o := n.Opts
	lo := &api.LockOptions{Key: o.Key, Value: candidate.Value(o, n.Address, "")}
	if o.TTLSet {
		lo.SessionTTL = o.TTL.String()
	}
	if o.LockDelaySet {
		lo.LockDelay = candidate.WireLockDelay(o.LockDelay)
	}
	if o.BindCheck || o.Behavior != "" {
		// Only a whole SessionEntry can bind checks or set a behaviour. api.Lock then still
		// renews with SessionTTL, so both TTLs must be the same.
		lo.SessionTTL = o.TTL.String()
		lo.SessionOpts = &api.SessionEntry{
			Name: api.DefaultLockSessionName, TTL: o.TTL.String(), Behavior: o.Behavior,
			LockDelay: lo.LockDelay,
		}
		if o.BindCheck {
			lo.SessionOpts.ServiceChecks = []api.ServiceCheck{{ID: candidate.CheckID(o.Name)}}
		}
	}
	return lo
}

func (g *golock) Describe(n *candidate.Node) string {
	lo := lockOptions(n)
	ttl, delay := lo.SessionTTL, "15s (Consul's default)"
	if ttl == "" {
		ttl = api.DefaultLockSessionTTL
	}
	if lo.LockDelay != 0 {
		delay = lo.LockDelay.String()
	}
	behavior, bound := "release", "not bound to its check"
	if lo.SessionOpts != nil && lo.SessionOpts.Behavior != "" {
		behavior = lo.SessionOpts.Behavior
	}
	if n.Opts.BindCheck {
		bound = "bound to its check"
	}
	return fmt.Sprintf("key %s, ttl %s, behavior %s, lock-delay %s, %s (Go, api.Lock)",
		n.Opts.Key, ttl, behavior, delay, bound)
}

// Campaign: Lock() until it is ours, lead until its channel closes, Unlock, again.
func (g *golock) Campaign(n *candidate.Node) {
	lock, err := n.Client.LockOpts(lockOptions(n))
	if err != nil {
		n.Fail(err)
		return
	}
	g.lock = lock
	backoff := errorBackoffFirst
	for !n.Stopping() {
		lost, err := lock.Lock(n.Stop)
		if err != nil {
			n.Error(fmt.Errorf("api.Lock: %w", err))
			n.Sleep(backoff)
			backoff = min(2*backoff, errorBackoffMax)
			continue
		}
		if lost == nil { // asked to stop while waiting
			return
		}
		backoff = errorBackoffFirst
		session := g.spy.current()
		n.SetSession(session)
		g.held, g.session = true, session
		token, lockIndex, err := candidate.FencingToken(n, session)
		if err == nil && token != 0 {
			n.Elected(token, lockIndex, session)
		} else if err != nil {
			n.Error(fmt.Errorf("reading %s after acquiring it: %w", n.Opts.Key, err))
		}
		select {
		case <-lost:
			if token != 0 {
				n.Lost("api.Lock's channel closed: the key no longer names its session")
			}
			_ = g.unlock(n, true)
		case <-n.Stop:
			return
		}
	}
}

// unlock releases the lock (a lost one too, which resets the Lock for the next Lock()),
// then waits until RenewPeriodic has destroyed the session, destroying it itself if not.
// After a loss the session is often gone already (RenewPeriodic then ended on its own and
// destroys nothing): there is nothing to wait for.
func (g *golock) unlock(n *candidate.Node, lost bool) error {
	session := g.session
	err := g.lock.Unlock()
	g.held, g.session = false, ""
	n.SetSession("")
	if lost && session != "" {
		if info, _, infoErr := n.Client.Session().Info(session, nil); infoErr == nil && info == nil {
			return err
		}
	}
	if session != "" && !g.spy.waitDestroyed(session, destroyWait) {
		_, _ = n.Client.Session().Destroy(session, nil)
	}
	return err
}

// Resign releases the lock if held and makes sure its session is destroyed; when waiting
// for the lock, Lock() has already returned and closed its renewal, which destroys it.
func (g *golock) Resign(n *candidate.Node) (uint64, string, error) {
	token := n.Token()
	if g.held {
		session := g.session
		if err := g.unlock(n, false); err != nil {
			return token, session, err
		}
		return token, session, nil
	}
	session := g.spy.current()
	if session != "" && !g.spy.waitDestroyed(session, destroyWait) {
		if _, err := n.Client.Session().Destroy(session, nil); err != nil {
			return 0, session, err
		}
	}
	return 0, session, nil
}

// sessionSpy watches the client's own requests, so the program learns which session
// api.Lock created (the Lock keeps it private) and when RenewPeriodic destroyed it.
type sessionSpy struct {
	base      http.RoundTripper
	mu        sync.Mutex
	latest    string
	destroyed map[string]chan struct{}
}

func (s *sessionSpy) RoundTrip(request *http.Request) (*http.Response, error) {
	response, err := s.base.RoundTrip(request)
	if err != nil || response.StatusCode != http.StatusOK || request.Method != http.MethodPut {
		return response, err
	}
	path := request.URL.Path
	switch {
	case path == "/v1/session/create":
		body, readErr := io.ReadAll(response.Body)
		_ = response.Body.Close()
		response.Body = io.NopCloser(strings.NewReader(string(body)))
		if readErr == nil {
			if id := sessionID(body); id != "" {
				s.mu.Lock()
				s.latest = id
				s.mu.Unlock()
			}
		}
	case strings.HasPrefix(path, "/v1/session/destroy/"):
		s.done(strings.TrimPrefix(path, "/v1/session/destroy/"))
	}
	return response, nil
}

func sessionID(body []byte) string {
	var created struct{ ID string }
	if json.Unmarshal(body, &created) != nil {
		return ""
	}
	return created.ID
}

func (s *sessionSpy) channel(id string) chan struct{} {
	ch, ok := s.destroyed[id]
	if !ok {
		ch = make(chan struct{})
		s.destroyed[id] = ch
	}
	return ch
}

func (s *sessionSpy) done(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(id)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (s *sessionSpy) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

// waitDestroyed reports whether the session was destroyed through this client within d.
func (s *sessionSpy) waitDestroyed(id string, d time.Duration) bool {
	s.mu.Lock()
	ch := s.channel(id)
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}
