package consulapi

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/devagent"
)

// registerTTLService registers service id with a TTL check and makes the check pass.
func registerTTLService(t *testing.T, client *api.Client, id string) string {
	t.Helper()
	err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: id, Check: &api.AgentServiceCheck{TTL: "30s"},
	})
	if err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	checkID := "service:" + id
	if err := client.Agent().UpdateTTL(checkID, "ok", api.HealthPassing); err != nil {
		t.Fatalf("UpdateTTL: %v", err)
	}
	return checkID
}

func TestSessionCreateWithEveryField(t *testing.T) {
	client := devagent.Start(t).Client
	node, err := client.Agent().NodeName()
	if err != nil || node == "" {
		t.Fatalf("NodeName = %q, %v", node, err)
	}
	checkID := registerTTLService(t, client, "web")
	entry := &api.SessionEntry{
		Name: "every-field", Node: node, LockDelay: 2500 * time.Millisecond,
		Behavior: api.SessionBehaviorDelete, TTL: "15s",
		NodeChecks: []string{"serfHealth"}, ServiceChecks: []api.ServiceCheck{{ID: checkID}},
	}
	id, meta, err := client.Session().Create(entry, nil)
	if err != nil || id == "" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	if meta.RequestTime <= 0 {
		t.Errorf("WriteMeta = %+v", meta)
	}
	info, qm, err := client.Session().Info(id, nil)
	if err != nil || info == nil {
		t.Fatalf("Info = %v, %v", info, err)
	}
	if info.ID != id || info.Name != "every-field" || info.Node != node ||
		info.LockDelay != 2500*time.Millisecond || info.Behavior != "delete" || info.TTL != "15s" {
		t.Errorf("Info = %+v", info)
	}
	if len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" ||
		len(info.ServiceChecks) != 1 || info.ServiceChecks[0].ID != checkID {
		t.Errorf("bound checks: node %v service %v", info.NodeChecks, info.ServiceChecks)
	}
	if info.CreateIndex == 0 || qm.LastIndex < info.CreateIndex {
		t.Errorf("CreateIndex %d, LastIndex %d", info.CreateIndex, qm.LastIndex)
	}
	// The deprecated Checks field still binds checks (Consul keeps it for old clients).
	old := mustSession(t, client, &api.SessionEntry{Checks: []string{"serfHealth", checkID}, TTL: "15s"})
	oldInfo, _, _ := client.Session().Info(old, nil)
	if oldInfo == nil || len(oldInfo.NodeChecks)+len(oldInfo.ServiceChecks) == 0 && len(oldInfo.Checks) == 0 {
		t.Errorf("a session created with Checks: %+v", oldInfo)
	}
	// A session with no checks at all.
	bare, _, err := client.Session().CreateNoChecks(&api.SessionEntry{TTL: "15s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bareInfo, _, _ := client.Session().Info(bare, nil)
	if bareInfo == nil || len(bareInfo.NodeChecks) != 0 || len(bareInfo.ServiceChecks) != 0 {
		t.Errorf("CreateNoChecks: %+v", bareInfo)
	}
	// Defaults: Consul's 15s lock-delay, behaviour release, the serfHealth node check.
	plain := mustSession(t, client, nil)
	plainInfo, _, _ := client.Session().Info(plain, nil)
	if plainInfo == nil || plainInfo.LockDelay != 15*time.Second || plainInfo.Behavior != "release" ||
		plainInfo.TTL != "" || len(plainInfo.NodeChecks) != 1 {
		t.Errorf("a session created with no entry: %+v", plainInfo)
	}
}

func TestSessionRefusals(t *testing.T) {
	client := devagent.Start(t).Client
	for name, entry := range map[string]*api.SessionEntry{
		"TTL below session_ttl_min": {TTL: "500ms"},
		"TTL above 24h":             {TTL: "25h"},
		"unknown behaviour":         {Behavior: "explode"},
		"unknown node check":        {NodeChecks: []string{"nope"}},
		"unknown node":              {Node: "no-such-node"},
	} {
		if id, _, err := client.Session().Create(entry, nil); err == nil {
			t.Errorf("%s: Create succeeded (%s)", name, id)
		}
	}
	// A critical check cannot be bound.
	err := client.Agent().CheckRegister(&api.AgentCheckRegistration{Name: "down",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "30s"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Session().Create(&api.SessionEntry{NodeChecks: []string{"serfHealth", "down"}}, nil); err == nil {
		t.Errorf("a session bound to a critical check was created")
	}
}

func TestSessionInfoNodeListDestroy(t *testing.T) {
	client := devagent.Start(t).Client
	sessions := client.Session()
	node, _ := client.Agent().NodeName()
	a := mustSession(t, client, &api.SessionEntry{Name: "a", TTL: "10s"})
	b := mustSession(t, client, &api.SessionEntry{Name: "b"})
	list, meta, err := sessions.List(nil)
	if err != nil || len(list) != 2 || meta.LastIndex == 0 {
		t.Fatalf("List = %v, %+v, %v", list, meta, err)
	}
	onNode, _, err := sessions.Node(node, nil)
	if err != nil || len(onNode) != 2 {
		t.Errorf("Node(%s) = %v, %v", node, onNode, err)
	}
	if none, _, err := sessions.Node("elsewhere", nil); err != nil || len(none) != 0 {
		t.Errorf("Node(elsewhere) = %v, %v", none, err)
	}
	if info, _, err := sessions.Info("00000000-0000-0000-0000-000000000000", nil); err != nil || info != nil {
		t.Errorf("Info of an unknown session = %v, %v", info, err)
	}
	if _, err := sessions.Destroy(a, nil); err != nil {
		t.Fatal(err)
	}
	if info, _, _ := sessions.Info(a, nil); info != nil {
		t.Errorf("destroyed session still there: %+v", info)
	}
	if _, err := sessions.Destroy(a, nil); err != nil {
		t.Errorf("destroying a gone session: %v (Consul answers true)", err)
	}
	list, _, _ = sessions.List(nil)
	if len(list) != 1 || list[0].ID != b {
		t.Errorf("List after destroy = %v", list)
	}
}

func TestSessionRenew(t *testing.T) {
	client := devagent.Start(t).Client
	sessions := client.Session()
	id := mustSession(t, client, &api.SessionEntry{TTL: "10s"})
	entry, _, err := sessions.Renew(id, nil)
	if err != nil || entry == nil || entry.ID != id || entry.TTL != "10s" {
		t.Fatalf("Renew = %+v, %v", entry, err)
	}
	gone, _, err := sessions.Renew("00000000-0000-0000-0000-000000000000", nil)
	if err != nil || gone != nil {
		t.Errorf("Renew of an unknown session = %v, %v (the client reads Consul's 404 as nil)", gone, err)
	}
}

func TestSessionTTLExpiry(t *testing.T) {
	client := devagent.Start(t).Client
	id := mustSession(t, client, &api.SessionEntry{TTL: "1s", LockDelay: time.Millisecond})
	began := time.Now()
	for {
		info, _, err := client.Session().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info == nil {
			break
		}
		if time.Since(began) > 5*time.Second {
			t.Fatalf("a 1s session without renewal still lives after %s", time.Since(began))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Consul invalidates a session no earlier than its TTL and no later than twice it.
	if took := time.Since(began); took < 900*time.Millisecond {
		t.Errorf("a 1s session expired after only %s", took)
	}
}

func TestSessionRenewPeriodic(t *testing.T) {
	client := devagent.Start(t).Client
	sessions := client.Session()
	id := mustSession(t, client, &api.SessionEntry{TTL: "1s"})
	done := make(chan struct{})
	result := make(chan error, 1)
	go func() { result <- sessions.RenewPeriodic("1s", id, nil, done) }()
	time.Sleep(3 * time.Second) // three TTLs: only renewal keeps it alive
	if info, _, _ := sessions.Info(id, nil); info == nil {
		t.Fatalf("RenewPeriodic did not keep a 1s session alive for 3s")
	}
	close(done) // RenewPeriodic destroys the session when done is closed
	if err := <-result; err != nil {
		t.Errorf("RenewPeriodic returned %v after done was closed", err)
	}
	if info, _, _ := sessions.Info(id, nil); info != nil {
		t.Errorf("the session survived RenewPeriodic's done channel")
	}
	// A session destroyed from outside: the next renew gets 404 and RenewPeriodic ends
	// with ErrSessionExpired.
	other := mustSession(t, client, &api.SessionEntry{TTL: "1s"})
	go func() { result <- sessions.RenewPeriodic("1s", other, nil, make(chan struct{})) }()
	time.Sleep(200 * time.Millisecond)
	if _, err := sessions.Destroy(other, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, api.ErrSessionExpired) {
			t.Errorf("RenewPeriodic on a destroyed session returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("RenewPeriodic did not notice its session was destroyed")
	}
}

func TestSessionBoundToACheckIsInvalidatedWhenItFails(t *testing.T) {
	client := devagent.Start(t).Client
	checkID := registerTTLService(t, client, "bound")
	id := mustSession(t, client, &api.SessionEntry{TTL: "10s", LockDelay: time.Millisecond,
		ServiceChecks: []api.ServiceCheck{{ID: checkID}}})
	if ok, _, _ := client.KV().Acquire(&api.KVPair{Key: "bound/lead", Session: id}, nil); !ok {
		t.Fatal("Acquire failed")
	}
	if err := client.Agent().FailTTL(checkID, "gone bad"); err != nil {
		t.Fatal(err)
	}
	if info, _, _ := client.Session().Info(id, nil); info != nil {
		t.Errorf("the session outlived its critical check")
	}
	if pair, _, _ := client.KV().Get("bound/lead", nil); pair == nil || pair.Session != "" {
		t.Errorf("the lock was not released: %+v", pair)
	}
}
