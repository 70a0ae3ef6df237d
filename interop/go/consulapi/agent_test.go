package consulapi

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/devagent"
)

// waitForStatus polls the agent's view of a check until it has the status.
func waitForStatus(t *testing.T, client *api.Client, checkID, status string, within time.Duration) *api.AgentCheck {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		checks, err := client.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		if check := checks[checkID]; check != nil && check.Status == status {
			return check
		}
		if time.Now().After(deadline) {
			t.Fatalf("check %s is not %s within %s: %+v", checkID, status, within, checks[checkID])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentServiceWithHTTPCheck(t *testing.T) {
	client := devagent.Start(t).Client
	var healthy atomic.Bool
	healthy.Store(true)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			_, _ = w.Write([]byte("ok"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer endpoint.Close()
	err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "node01", Name: "monitoring", Address: "127.0.0.1", Port: 8080, Tags: []string{"a"},
		Meta:  map[string]string{"lang": "go"},
		Check: &api.AgentServiceCheck{HTTP: endpoint.URL + "/_health", Interval: "1s", Timeout: "1s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	svc := services["node01"]
	if svc == nil || svc.Service != "monitoring" || svc.Port != 8080 || svc.Address != "127.0.0.1" ||
		len(svc.Tags) != 1 || svc.Meta["lang"] != "go" {
		t.Fatalf("Services()[node01] = %+v", svc)
	}
	one, _, err := client.Agent().Service("node01", nil)
	if err != nil || one.ID != "node01" || one.Service != "monitoring" || one.ContentHash == "" {
		t.Errorf("Service(node01) = %+v, %v", one, err)
	}
	if _, _, err := client.Agent().Service("nope", nil); err == nil ||
		!strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "unknown service ID: nope") {
		t.Errorf("Service(nope) error = %v", err)
	}
	check := waitForStatus(t, client, "service:node01", api.HealthPassing, 5*time.Second)
	if check.Type != "http" || check.ServiceID != "node01" || check.ServiceName != "monitoring" {
		t.Errorf("the service's check = %+v", check)
	}
	healthy.Store(false)
	check = waitForStatus(t, client, "service:node01", api.HealthCritical, 5*time.Second)
	if !strings.Contains(check.Output, "503") {
		t.Errorf("a failing HTTP check's output does not name the status: %q", check.Output)
	}
	if err := client.Agent().ServiceDeregister("node01"); err != nil {
		t.Fatal(err)
	}
	if checks, _ := client.Agent().Checks(); checks["service:node01"] != nil {
		t.Errorf("the check outlived its service")
	}
	if err := client.Agent().ServiceDeregister("node01"); err == nil {
		t.Errorf("deregistering an unknown service did not fail")
	}
}

func TestAgentTCPCheck(t *testing.T) {
	client := devagent.Start(t).Client
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	err = client.Agent().CheckRegister(&api.AgentCheckRegistration{ID: "tcp", Name: "tcp",
		AgentServiceCheck: api.AgentServiceCheck{TCP: listener.Addr().String(), Interval: "1s", Timeout: "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	check := waitForStatus(t, client, "tcp", api.HealthPassing, 5*time.Second)
	if check.Type != "tcp" {
		t.Errorf("TCP check type %q", check.Type)
	}
	_ = listener.Close()
	waitForStatus(t, client, "tcp", api.HealthCritical, 5*time.Second)
	if err := client.Agent().CheckDeregister("tcp"); err != nil {
		t.Fatal(err)
	}
}

func TestAgentTTLCheckAndUpdates(t *testing.T) {
	client := devagent.Start(t).Client
	agent := client.Agent()
	err := agent.CheckRegister(&api.AgentCheckRegistration{ID: "beat", Name: "heartbeat",
		Notes: "a TTL check", AgentServiceCheck: api.AgentServiceCheck{TTL: "10s"}})
	if err != nil {
		t.Fatal(err)
	}
	checks, _ := agent.Checks()
	if c := checks["beat"]; c == nil || c.Status != api.HealthCritical || c.Type != "ttl" || c.Notes != "a TTL check" {
		t.Fatalf("a new TTL check = %+v (Consul starts it critical)", c)
	}
	for _, step := range []struct{ status, output string }{
		{api.HealthPassing, "all good"}, {api.HealthWarning, "slow"}, {api.HealthCritical, "down"},
	} {
		if err := agent.UpdateTTL("beat", step.output, step.status); err != nil {
			t.Fatalf("UpdateTTL(%s): %v", step.status, err)
		}
		c := waitForStatus(t, client, "beat", step.status, time.Second)
		if c.Output != step.output {
			t.Errorf("UpdateTTL(%s) output = %q", step.status, c.Output)
		}
	}
	if err := agent.PassTTL("beat", "pass"); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, client, "beat", api.HealthPassing, time.Second)
	if err := agent.WarnTTL("beat", "warn"); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, client, "beat", api.HealthWarning, time.Second)
	if err := agent.FailTTL("beat", "fail"); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, client, "beat", api.HealthCritical, time.Second)
	if err := agent.UpdateTTL("beat", "", "sideways"); err == nil {
		t.Errorf("UpdateTTL with an unknown status succeeded")
	}
	if err := agent.UpdateTTL("nope", "", api.HealthPassing); err == nil {
		t.Errorf("UpdateTTL of an unknown check succeeded")
	}
	// A TTL check not updated in time goes critical on its own.
	err = agent.CheckRegister(&api.AgentCheckRegistration{ID: "short", Name: "short",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.PassTTL("short", ""); err != nil {
		t.Fatal(err)
	}
	c := waitForStatus(t, client, "short", api.HealthCritical, 4*time.Second)
	if !strings.Contains(c.Output, "TTL expired") {
		t.Errorf("an expired TTL check's output: %q", c.Output)
	}
}

func TestAgentSelfAndMembers(t *testing.T) {
	client := devagent.Start(t).Client
	self, err := client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"Config", "DebugConfig", "Member", "Meta", "Stats"} {
		if _, ok := self[section]; !ok {
			t.Errorf("Agent().Self() has no %s", section)
		}
	}
	node, err := client.Agent().NodeName()
	if err != nil || node == "" || self["Config"]["NodeName"] != node {
		t.Errorf("NodeName = %q, %v; Config.NodeName = %v", node, err, self["Config"]["NodeName"])
	}
	members, err := client.Agent().Members(false)
	if err != nil || len(members) != 1 || members[0].Name != node || members[0].Status != 1 {
		t.Errorf("Members = %+v, %v", members, err)
	}
}
