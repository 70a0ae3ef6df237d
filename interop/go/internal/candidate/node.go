package candidate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// errStopping ends a wait because the node was asked to stop.
var errStopping = errors.New("stopping")

// agentGrace is how long a node keeps asking an agent that refuses it at start-up.
const agentGrace = 2 * time.Second

// Campaigner is one way of contending for the leader key.
type Campaigner interface {
	// Describe is the detail of the "campaigning" event.
	Describe(n *Node) string
	// Campaign contends for the key until n.Stop is closed, reporting through n.Elected,
	// n.Lost and n.Observed. It returns when asked to stop (or on an error it cannot
	// survive, after n.Fail).
	Campaign(n *Node)
	// Resign runs after Campaign returned: release the key if held, destroy the session.
	// It returns the token held when it was called (0: not leading) and the session.
	Resign(n *Node) (token uint64, session string, err error)
}

// Node is one candidate process: its client, log, writer and what it believes.
type Node struct {
	Opts   Options
	Client *api.Client
	Log    *EventLog
	Stop   chan struct{} // closed when the node is asked to stop
	// Address is what the leader's value says: 127.0.0.1:<health port>.
	Address string

	ctx      context.Context
	cancel   context.CancelFunc
	writer   *Writer
	mu       sync.Mutex
	token    uint64
	session  string
	observed *string // the last holder session seen on the key ("" = nobody), nil = not yet
	failure  string
	failed   chan struct{}
}

// Session is the session the node campaigns or leads with ("" when none).
func (n *Node) Session() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.session
}

// SetSession records the session the node now campaigns with.
func (n *Node) SetSession(id string) {
	n.mu.Lock()
	n.session = id
	n.mu.Unlock()
}

// Token is the fencing token while the node believes it leads, else 0.
func (n *Node) Token() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.token
}

// Elected logs "elected" and starts the writer with the token.
func (n *Node) Elected(token, lockIndex uint64, session string) {
	n.mu.Lock()
	n.token, n.session = token, session
	n.mu.Unlock()
	n.Log.Emit("elected", token, session,
		fmt.Sprintf("holds %s (lock index %d)", n.Opts.Key, lockIndex))
	if n.writer != nil {
		n.writer.Lead(token)
	}
}

// Lost logs "lost" (unless stopping: resigning has its own event) and stops writing.
func (n *Node) Lost(reason string) {
	if n.writer != nil {
		n.writer.Follow()
	}
	n.mu.Lock()
	token, session := n.token, n.session
	n.token = 0
	n.mu.Unlock()
	if !n.Stopping() {
		n.Log.Emit("lost", token, session, reason)
	}
}

// Observed logs "leader-observed" when the holder seen on the key changed. value is the
// key's value: the Python nodes' JSON {"node", "address", "session"} names the leader.
func (n *Node) Observed(pair *api.KVPair) {
	holder := ""
	if pair != nil {
		holder = pair.Session
	}
	n.mu.Lock()
	same := n.observed != nil && *n.observed == holder
	n.observed = &holder
	n.mu.Unlock()
	if same {
		return
	}
	if holder == "" {
		n.Log.Emit("leader-observed", 0, "", "no leader")
		return
	}
	n.Log.Emit("leader-observed", 0, holder, "leader is "+LeaderName(pair.Value))
}

// Error logs an error the campaign survives (it retries).
func (n *Node) Error(err error) {
	n.Log.Emit("error", 0, n.Session(), err.Error())
}

// Fail records an error the node cannot go on after, and makes it step down.
func (n *Node) Fail(err error) {
	n.mu.Lock()
	if n.failure == "" {
		n.failure = err.Error()
		close(n.failed)
	}
	n.mu.Unlock()
	n.Log.Emit("error", 0, n.Session(), "campaign failed: "+err.Error())
	fmt.Fprintf(os.Stderr, "%s: campaign failed: %v\n", n.Opts.Name, err)
}

// Stopping says whether the node was asked to stop.
func (n *Node) Stopping() bool {
	select {
	case <-n.Stop:
		return true
	default:
		return false
	}
}

// Sleep waits d or until the node is asked to stop; false when stopping.
func (n *Node) Sleep(d time.Duration) bool {
	select {
	case <-n.Stop:
		return false
	case <-time.After(d):
		return true
	}
}

// Context is cancelled when the node is asked to stop (for blocking queries).
func (n *Node) Context() context.Context { return n.ctx }

// NextIndex is the WaitIndex for the next blocking query, by Consul's documented rules:
// start again from 0 when the index went backwards, and never wait on an index below 1.
func NextIndex(previous, returned uint64) uint64 {
	if returned < previous {
		return 0
	}
	return max(returned, 1)
}

// Value is the JSON a leader writes into the key, as elect_helpers.lock.leader_value does
// (session is left out when the client library creates the session itself).
func Value(opts Options, address, session string) []byte {
	value := map[string]string{"node": opts.Name, "address": address}
	if session != "" {
		value["session"] = session
	}
	data, _ := json.Marshal(value)
	return data
}

// LeaderName is the node named by a key's JSON value, or "?" for any other value.
func LeaderName(value []byte) string {
	var parsed struct {
		Node string `json:"node"`
	}
	if json.Unmarshal(value, &parsed) != nil || parsed.Node == "" {
		return "?"
	}
	return parsed.Node
}

// FencingToken reads the key right after acquiring it: while session holds it, its
// ModifyIndex is the raft index of the acquiring write, which grows with every new leader
// even when the key was deleted in between (elect_helpers.lock.FencingToken's sequence).
// It returns 0 when the key no longer names session.
func FencingToken(n *Node, session string) (token, lockIndex uint64, err error) {
	pair, _, err := n.Client.KV().Get(n.Opts.Key, (&api.QueryOptions{}).WithContext(n.Context()))
	if err != nil {
		return 0, 0, err
	}
	n.Observed(pair)
	if pair == nil || pair.Session != session {
		return 0, 0, nil
	}
	return pair.ModifyIndex, pair.LockIndex, nil
}

// WireLockDelay is the LockDelay to put in an api.SessionEntry for a wanted lock-delay.
// HashiCorp's client leaves a zero LockDelay out of the request, and Consul then applies
// its 15s default, so a wanted 0 is sent as the smallest value the client can send (it
// sends milliseconds): 1ms.
func WireLockDelay(wanted time.Duration) time.Duration {
	if wanted <= 0 {
		return time.Millisecond
	}
	return wanted
}

// checkAgent fails early and clearly if the agent is unreachable or refuses the TTL.
func checkAgent(client *api.Client, ttl time.Duration) error {
	deadline := time.Now().Add(agentGrace)
	var self map[string]map[string]any
	for {
		var err error
		self, err = client.Agent().Self()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot reach the Consul agent at %s (CONSUL_HTTP_ADDR): %v",
				api.DefaultConfig().Address, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	raw, ok := self["DebugConfig"]["SessionTTLMin"].(string)
	if !ok {
		return nil // the agent does not say (e.g. no agent:read); Consul validates the TTL
	}
	minimum, err := time.ParseDuration(raw)
	if err == nil && ttl < minimum {
		return fmt.Errorf("--ttl %s is below this agent's session_ttl_min (%s); Consul accepts "+
			"TTLs from session_ttl_min to 24h. Use a longer --ttl or start the agent with a "+
			"lower session_ttl_min", ttl, minimum)
	}
	return nil
}

// Main runs one candidate process until SIGTERM/SIGINT and exits: 0 after a clean
// step-down, 1 when the node could not run or stepped down after errors. configure may
// adjust the client's configuration (api.DefaultConfig(), which reads CONSUL_HTTP_ADDR).
func Main(opts Options, campaigner Campaigner, configure ...func(*api.Config)) {
	os.Exit(run(opts, campaigner, configure))
}

func run(opts Options, campaigner Campaigner, configure []func(*api.Config)) int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	log, err := OpenEventLog(opts.Events, opts.Name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", opts.Name, err)
		return 1
	}
	defer log.Close()
	config := api.DefaultConfig() // CONSUL_HTTP_ADDR and friends, as the Go client reads them
	for _, adjust := range configure {
		adjust(config)
	}
	client, err := api.NewClient(config)
	if err != nil {
		return startFailure(log, opts, err)
	}
	n := &Node{Opts: opts, Client: client, Log: log, Stop: make(chan struct{}),
		failed: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := checkAgent(client, opts.TTL); err != nil {
		return startFailure(log, opts, err)
	}
	health, err := ServeHealth()
	if err != nil {
		return startFailure(log, opts, err)
	}
	n.Address = fmt.Sprintf("127.0.0.1:%d", health.Port)
	log.Emit("started", 0, "", fmt.Sprintf("pid %d, health %s", os.Getpid(), health.URL))
	if err := Register(client, opts, health); err != nil {
		return startFailure(log, opts, err)
	}
	log.Emit("registered", 0, "", fmt.Sprintf("service %s id %s, check %s every %s",
		opts.Service, opts.Name, CheckID(opts.Name), opts.CheckInterval))
	if opts.ReadyFD >= 0 {
		ready := os.NewFile(uintptr(opts.ReadyFD), "ready")
		_, _ = ready.Write([]byte("ready\n"))
		_ = ready.Close()
	}
	campaigned := make(chan struct{})
	go func() {
		defer close(campaigned)
		if opts.BindCheck {
			if err := WaitForCheck(n); err != nil {
				if !errors.Is(err, errStopping) {
					n.Fail(err)
				}
				return
			}
			log.Emit("check-passing", 0, "", CheckID(opts.Name))
		}
		if opts.Resource != "" || opts.UnfencedResource != "" {
			n.writer = NewWriter(opts, log, n.Session)
			n.writer.Start()
		}
		log.Emit("campaigning", 0, "", campaigner.Describe(n))
		campaigner.Campaign(n)
	}()
	select {
	case <-signals:
	case <-n.failed:
	}
	close(n.Stop)
	n.cancel()
	<-campaigned
	ok := stepDown(n, campaigner)
	if ok && n.failure == "" {
		log.Emit("stopped", 0, "", "graceful step-down")
		return 0
	}
	log.Emit("stopped", 0, "", "stepped down after errors")
	return 1
}

func startFailure(log *EventLog, opts Options, err error) int {
	fmt.Fprintf(os.Stderr, "%s: %v\n", opts.Name, err)
	log.Emit("error", 0, "", err.Error())
	return 1
}

// stepDown stops writing, resigns (release, destroy) and deregisters; true if all went well.
func stepDown(n *Node, campaigner Campaigner) bool {
	ok := true
	if n.writer != nil {
		n.writer.Stop()
	}
	token, session, err := campaigner.Resign(n)
	switch {
	case err != nil:
		ok = false
		n.Log.Emit("error", 0, session, "resign failed: "+err.Error())
	case token != 0:
		n.Log.Emit("resigned", token, session, "released the key and destroyed the session")
	case session != "":
		n.Log.Emit("resigned", 0, session, "destroyed the session")
	}
	if err := n.Client.Agent().ServiceDeregister(n.Opts.Name); err != nil {
		ok = false
		n.Log.Emit("error", 0, "", "deregister failed: "+err.Error())
	} else {
		n.Log.Emit("deregistered", 0, "", n.Opts.Name)
	}
	// The health endpoint dies with the process; its service is deregistered already.
	return ok
}
