package consulapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/consul/sdk/testutil"

	"electhelpers/interop/internal/devagent"
)

// HashiCorp's sdk/testutil starts a consul binary, which this machine need not have; its
// TestServer's readiness checks and helpers only need the HTTP address, so they run
// against the embedded agent through a TestServer pointed at it.
func TestSDKTestutilReadinessAndHelpers(t *testing.T) {
	agent := devagent.Start(t)
	_, port, _ := strings.Cut(agent.Addr, ":")
	httpPort, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	server := &testutil.TestServer{
		Config:     &testutil.TestServerConfig{Ports: &testutil.TestPortConfig{HTTP: httpPort}},
		HTTPAddr:   agent.Addr,
		HTTPClient: http.DefaultClient,
	}
	server.WaitForLeader(t)
	server.WaitForSerfCheck(t)
	server.SetKVString(t, "sdk/key", "value")
	if got := server.GetKVString(t, "sdk/key"); got != "value" {
		t.Errorf("GetKVString = %q", got)
	}
	server.PopulateKV(t, map[string][]byte{"sdk/a": []byte("1"), "sdk/b": []byte("2")})
	if keys := server.ListKV(t, "sdk/"); len(keys) != 3 {
		t.Errorf("ListKV = %v", keys)
	}
	server.AddService(t, "redis", "passing", []string{"primary"})
	server.AddCheck(t, "redis-extra", "redis", "warning")
	entries, _, err := agent.Client.Health().Service("redis", "", false, nil)
	if err != nil || len(entries) != 1 || len(entries[0].Checks) != 3 {
		t.Errorf("the service AddService and AddCheck made: %+v, %v", entries, err)
	}
}
