// Command article is the article's leader election in Go, written in our own words with
// HashiCorp's client: (1) register the node as a service with an HTTP check, (2) create a
// session (TTL 10s, behaviour delete), (3) acquire service/<service>/leader with it and
// (4) keep the session alive with RenewPeriodic. Around those four steps it adds only what
// a candidate needs to take part in a real election: try again while someone else holds
// the key, notice losing it, and step down on SIGTERM (release the key, destroy the
// session, deregister).
//
// It takes the agent address from CONSUL_HTTP_ADDR, as every program using the client
// does, and has the flags and JSON-line events of python -m elect_helpers.node, so Go and
// Python nodes can run in one elect_helpers.cluster.Cluster. The key is written with
// api.LockFlagValue in its flags, the mark api.Lock checks before it contends for a key,
// so this program, api.Lock and the Python Election can share one key.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/candidate"
)

const about = `The article's four steps in Go: register with an HTTP check, create a session,
acquire the leader key, RenewPeriodic; campaigns again after losing the key.
The agent address comes from CONSUL_HTTP_ADDR (default 127.0.0.1:8500).
SIGTERM steps down gracefully; SIGKILL is a crash; SIGSTOP/SIGCONT a pause.`

const (
	watchWait         = 15 * time.Second // one blocking query on the key
	lockDelayFirst    = 50 * time.Millisecond
	lockDelayMax      = 250 * time.Millisecond
	errorBackoffFirst = 100 * time.Millisecond
	errorBackoffMax   = 5 * time.Second
)

func main() {
	opts := candidate.ParseOrExit("article", about, candidate.ArticleDefaults)
	candidate.Main(opts, &article{})
}

// article campaigns with one session at a time; a lost session is replaced by a new one.
type article struct {
	session  string
	renewEnd chan struct{} // closed to make RenewPeriodic destroy the session
	renewed  chan error    // RenewPeriodic's return value
	leading  bool
}

func (a *article) Describe(n *candidate.Node) string {
	o := n.Opts
	bound := "not bound to its check"
	if o.BindCheck {
		bound = "bound to its check"
	}
	return fmt.Sprintf("key %s, ttl %s, behavior %s, lock-delay %s, %s (Go, the article's steps)",
		o.Key, o.TTL, o.Behavior, o.LockDelay, bound)
}

// Campaign: create a session, acquire the key or wait for it, lead until it is lost.
func (a *article) Campaign(n *candidate.Node) {
	backoff := errorBackoffFirst
	for !n.Stopping() {
		if a.session == "" {
			if err := a.createSession(n); err != nil {
				if strings.Contains(err.Error(), "Invalid Session TTL") {
					n.Fail(err)
					return
				}
				n.Error(err)
				n.Sleep(backoff)
				backoff = min(2*backoff, errorBackoffMax)
				continue
			}
		}
		reason, err := a.contend(n)
		if n.Stopping() {
			return
		}
		if err != nil {
			n.Error(err)
			n.Sleep(backoff)
			backoff = min(2*backoff, errorBackoffMax)
			continue
		}
		backoff = errorBackoffFirst
		if a.leading {
			a.leading = false
			n.Lost(reason)
		}
		a.dropSession(n)
	}
}

// createSession is step 2, and starts step 4 in the background.
func (a *article) createSession(n *candidate.Node) error {
	o := n.Opts
	entry := &api.SessionEntry{
		Name:      "leader election: " + o.Name,
		TTL:       o.TTL.String(),
		Behavior:  o.Behavior,
		LockDelay: candidate.WireLockDelay(o.LockDelay),
	}
	if o.BindCheck {
		entry.ServiceChecks = []api.ServiceCheck{{ID: candidate.CheckID(o.Name)}}
	}
	id, _, err := n.Client.Session().Create(entry, nil)
	if err != nil {
		return fmt.Errorf("creating a session: %w", err)
	}
	a.session, a.renewEnd, a.renewed = id, make(chan struct{}), make(chan error, 1)
	n.SetSession(id)
	renewEnd, renewed := a.renewEnd, a.renewed
	go func() { renewed <- n.Client.Session().RenewPeriodic(o.TTL.String(), id, nil, renewEnd) }()
	return nil
}

// contend is step 3 in a loop: it returns why this session cannot lead any more (nil
// error), or an error of the agent to back off from; it returns early when stopping.
func (a *article) contend(n *candidate.Node) (string, error) {
	kv := n.Client.KV()
	var index uint64
	wait := watchWait
	retry := lockDelayFirst
	for {
		pair, meta, err := a.read(n, index, wait)
		if n.Stopping() {
			return "", nil
		}
		if reason, over := a.sessionOver(); over {
			return reason, nil
		}
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", n.Opts.Key, err)
		}
		n.Observed(pair)
		if pair != nil && pair.Session == a.session && a.leading {
			index, wait = candidate.NextIndex(index, meta.LastIndex), watchWait
			continue // still ours: keep watching
		}
		if a.leading {
			return lossReason(pair), nil
		}
		if pair != nil && pair.Session != "" && pair.Session != a.session {
			index, wait, retry = candidate.NextIndex(index, meta.LastIndex), watchWait, lockDelayFirst
			continue // held by someone else: block until the key changes
		}
		acquired, _, err := kv.Acquire(&api.KVPair{
			Key:     n.Opts.Key,
			Value:   candidate.Value(n.Opts, n.Address, a.session),
			Session: a.session,
			Flags:   api.LockFlagValue,
		}, nil)
		if err != nil {
			if strings.Contains(err.Error(), "invalid session") {
				return "session invalidated", nil
			}
			return "", fmt.Errorf("acquiring %s: %w", n.Opts.Key, err)
		}
		if !acquired {
			// Free but refused: the previous holder's lock-delay. Look again after a short,
			// growing pause (a change to the key ends the wait early).
			index, wait = candidate.NextIndex(index, meta.LastIndex), retry
			retry = min(2*retry, lockDelayMax)
			continue
		}
		token, lockIndex, err := candidate.FencingToken(n, a.session)
		if err != nil {
			return "", fmt.Errorf("reading %s after acquiring it: %w", n.Opts.Key, err)
		}
		if token == 0 {
			index = 0
			continue
		}
		a.leading = true
		n.Elected(token, lockIndex, a.session)
		index, wait = 0, watchWait
	}
}

// read is one blocking read of the key (non-blocking with index 0); it ends early when
// the node stops or RenewPeriodic gives up.
func (a *article) read(n *candidate.Node, index uint64, wait time.Duration) (*api.KVPair,
	*api.QueryMeta, error) {
	ctx, cancel := context.WithCancel(n.Context())
	defer cancel() // a read cut short by RenewPeriodic's end does not linger
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	type answer struct {
		pair *api.KVPair
		meta *api.QueryMeta
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		pair, meta, err := n.Client.KV().Get(n.Opts.Key, q)
		done <- answer{pair, meta, err}
	}()
	select {
	case got := <-done:
		return got.pair, got.meta, got.err
	case err := <-a.renewed:
		a.renewed <- err // keep it for sessionOver
		return nil, nil, nil
	}
}

// sessionOver reports whether RenewPeriodic ended on its own (session gone or renewing
// failed for a whole TTL): then this session must not be trusted any more.
func (a *article) sessionOver() (string, bool) {
	select {
	case err := <-a.renewed:
		a.renewed <- err
		if errors.Is(err, api.ErrSessionExpired) {
			return "session expired", true
		}
		return fmt.Sprintf("renewing failed for a whole TTL (%v)", err), true
	default:
		return "", false
	}
}

func lossReason(pair *api.KVPair) string {
	switch {
	case pair == nil:
		return "key deleted"
	case pair.Session == "":
		return "lock released outside the election"
	default:
		return "key held by another session (" + pair.Session + ")"
	}
}

// dropSession ends the current session: closing RenewPeriodic's done channel makes it
// destroy the session (unless it already returned on its own).
func (a *article) dropSession(n *candidate.Node) {
	if a.session == "" {
		return
	}
	select {
	case <-a.renewed: // RenewPeriodic gave up: destroy the session ourselves
		_, _ = n.Client.Session().Destroy(a.session, nil)
	default:
		close(a.renewEnd)
		select {
		case <-a.renewed:
		case <-time.After(5 * time.Second):
		}
	}
	a.session = ""
	n.SetSession("")
}

// Resign releases the key if this node leads, then destroys the session.
func (a *article) Resign(n *candidate.Node) (uint64, string, error) {
	token, session := n.Token(), a.session
	var err error
	if a.leading {
		_, _, err = n.Client.KV().Release(&api.KVPair{
			Key: n.Opts.Key, Session: session, Flags: api.LockFlagValue,
		}, nil)
		a.leading = false
	}
	a.dropSession(n)
	if err != nil {
		return token, session, fmt.Errorf("releasing %s: %w", n.Opts.Key, err)
	}
	return token, session, nil
}
