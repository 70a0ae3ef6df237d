package consulapi

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/devagent"
)

func TestHealthReads(t *testing.T) {
	client := devagent.Start(t).Client
	node, _ := client.Agent().NodeName()
	for _, id := range []string{"node01", "node02"} {
		err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: id, Name: "monitoring", Port: 8000, Check: &api.AgentServiceCheck{TTL: "30s"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Agent().PassTTL("service:node01", "up"); err != nil {
		t.Fatal(err)
	}
	health := client.Health()
	all, meta, err := health.Service("monitoring", "", false, nil)
	if err != nil || len(all) != 2 || meta.LastIndex == 0 {
		t.Fatalf("Health().Service = %v, %v", all, err)
	}
	for _, entry := range all {
		if entry.Node == nil || entry.Node.Node != node || entry.Service == nil || len(entry.Checks) != 2 {
			t.Errorf("a service entry: %+v (want the node, the service, serfHealth and its check)", entry)
		}
	}
	passing, _, err := health.Service("monitoring", "", true, nil)
	if err != nil || len(passing) != 1 || passing[0].Service.ID != "node01" {
		t.Errorf("passing only = %v, %v", passing, err)
	}
	if agg := all[0].Checks.AggregatedStatus(); agg == "" {
		t.Errorf("no aggregated status")
	}
	checks, _, err := health.Checks("monitoring", nil)
	if err != nil || len(checks) != 2 {
		t.Errorf("Health().Checks = %v, %v", checks, err)
	}
	nodeChecks, _, err := health.Node(node, nil)
	if err != nil || len(nodeChecks) != 3 {
		t.Errorf("Health().Node = %v, %v (serfHealth and two service checks)", nodeChecks, err)
	}
	critical, _, err := health.State(api.HealthCritical, nil)
	if err != nil || len(critical) != 1 || critical[0].CheckID != "service:node02" {
		t.Errorf("Health().State(critical) = %v, %v", critical, err)
	}
	any, _, err := health.State(api.HealthAny, nil)
	if err != nil || len(any) != 3 {
		t.Errorf("Health().State(any) = %v, %v", any, err)
	}
}

func TestHealthServiceBlocksUntilACheckChanges(t *testing.T) {
	client := devagent.Start(t).Client
	err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "w1", Name: "watched", Check: &api.AgentServiceCheck{TTL: "30s"}})
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := client.Health().Service("watched", "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = client.Agent().PassTTL("service:w1", "")
	}()
	began := time.Now()
	entries, meta2, err := client.Health().Service("watched", "", true,
		&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
	if err != nil || len(entries) != 1 || meta2.LastIndex <= meta.LastIndex {
		t.Fatalf("blocking health read = %v, index %d -> %d, %v", entries, meta.LastIndex, meta2.LastIndex, err)
	}
	if took := time.Since(began); took > 5*time.Second || took < 250*time.Millisecond {
		t.Errorf("the blocking health read returned after %s", took)
	}
}

func TestCatalogReads(t *testing.T) {
	agent := devagent.Start(t)
	client := agent.Client
	node, _ := client.Agent().NodeName()
	err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "node01", Name: "monitoring", Tags: []string{"primary"}, Port: 9000})
	if err != nil {
		t.Fatal(err)
	}
	catalog := client.Catalog()
	dcs, err := catalog.Datacenters()
	if err != nil || len(dcs) != 1 || dcs[0] != "dc1" {
		t.Errorf("Datacenters = %v, %v", dcs, err)
	}
	nodes, meta, err := catalog.Nodes(nil)
	if err != nil || len(nodes) != 1 || nodes[0].Node != node || nodes[0].Datacenter != "dc1" {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	// A fresh consul agent -dev has spent raft indexes on its own start-up (leader
	// election, its node, the consul service...): tools such as HashiCorp's sdk/testutil
	// wait for an index of at least 2.
	if meta.LastIndex < 2 {
		t.Errorf("catalog nodes index %d after start-up, want >= 2", meta.LastIndex)
	}
	if _, ok := nodes[0].TaggedAddresses["lan"]; !ok {
		t.Errorf("the node has no lan tagged address: %v", nodes[0].TaggedAddresses)
	}
	services, _, err := catalog.Services(nil)
	if err != nil || len(services["monitoring"]) != 1 || services["monitoring"][0] != "primary" {
		t.Errorf("Services = %v, %v", services, err)
	}
	if _, ok := services["consul"]; !ok {
		t.Errorf("the catalog has no consul service: %v", services)
	}
	instances, _, err := catalog.Service("monitoring", "", nil)
	if err != nil || len(instances) != 1 || instances[0].ServiceID != "node01" || instances[0].ServicePort != 9000 {
		t.Errorf("Service(monitoring) = %+v, %v", instances, err)
	}
	tagged, _, err := catalog.Service("monitoring", "secondary", nil)
	if err != nil || len(tagged) != 0 {
		t.Errorf("Service(monitoring, secondary) = %+v, %v", tagged, err)
	}
	one, _, err := catalog.Node(node, nil)
	if err != nil || one == nil || one.Services["node01"] == nil {
		t.Errorf("Node(%s) = %+v, %v", node, one, err)
	}
}

func TestStatus(t *testing.T) {
	client := devagent.Start(t).Client
	leader, err := client.Status().Leader()
	if err != nil || leader == "" {
		t.Errorf("Leader = %q, %v", leader, err)
	}
	peers, err := client.Status().Peers()
	if err != nil || len(peers) != 1 || peers[0] != leader {
		t.Errorf("Peers = %v, %v (leader %s)", peers, err, leader)
	}
}
