package candidate

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/consul/api"
)

// HealthPath is the path the node's HTTP check polls, as in elect_helpers.service.
const HealthPath = "/_health"

// HealthEndpoint answers GET /_health with 200 on a loopback port of its own.
type HealthEndpoint struct {
	Port int
	URL  string
}

// ServeHealth starts the endpoint in the background; it lives as long as the process.
func ServeHealth() (*HealthEndpoint, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", HealthPath, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	go func() { _ = http.Serve(listener, mux) }()
	port := listener.Addr().(*net.TCPAddr).Port
	return &HealthEndpoint{Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d%s", port, HealthPath)}, nil
}

// CheckID is the ID Consul gives the one check registered with service id.
func CheckID(serviceID string) string { return "service:" + serviceID }

// Register registers the node as an instance of its service (ID = node name) with an HTTP
// check on the health endpoint, as elect_helpers.service.register_node does.
func Register(client *api.Client, opts Options, health *HealthEndpoint) error {
	registration := &api.AgentServiceRegistration{
		ID:      opts.Name,
		Name:    opts.Service,
		Address: "127.0.0.1",
		Port:    health.Port,
		Check: &api.AgentServiceCheck{
			HTTP:     health.URL,
			Interval: opts.CheckInterval.String(),
			Timeout:  opts.CheckTimeout().String(),
		},
	}
	if err := client.Agent().ServiceRegister(registration); err != nil {
		return fmt.Errorf("registering %s as service %s: %w", opts.Name, opts.Service, err)
	}
	return nil
}

// WaitForCheck blocks (with blocking health queries) until the node's check passes, as a
// session may only be bound to a passing check; it gives up after 30s or three intervals.
func WaitForCheck(n *Node) error {
	opts := n.Opts
	checkID := CheckID(opts.Name)
	deadline := time.Now().Add(max(30*time.Second, 3*opts.CheckInterval))
	var index uint64
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("check %s did not pass within %s; is %s answering?",
				checkID, max(30*time.Second, 3*opts.CheckInterval), HealthPath)
		}
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: opts.CheckInterval * 3}).WithContext(
			n.Context())
		checks, meta, err := n.Client.Health().Checks(opts.Service, q)
		if n.Stopping() {
			return errStopping
		}
		if err != nil {
			return fmt.Errorf("waiting for check %s: %w", checkID, err)
		}
		for _, check := range checks {
			if check.CheckID == checkID && check.Status == api.HealthPassing {
				return nil
			}
		}
		index = NextIndex(index, meta.LastIndex)
	}
}
