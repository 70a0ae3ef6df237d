// Package consulapi tests HashiCorp's Go client (github.com/hashicorp/consul/api) against
// the embedded dev agent, for everything the tutorial uses. Each test starts its own agent.
package consulapi

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/devagent"
)

func mustSession(t *testing.T, client *api.Client, entry *api.SessionEntry) string {
	t.Helper()
	id, _, err := client.Session().Create(entry, nil)
	if err != nil {
		t.Fatalf("Session().Create: %v", err)
	}
	return id
}

func TestKVPutGetListDelete(t *testing.T) {
	kv := devagent.Start(t).Client.KV()
	if _, err := kv.Put(&api.KVPair{Key: "app/a", Value: []byte("one"), Flags: 42}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/b", Value: []byte("two")}, nil); err != nil {
		t.Fatal(err)
	}
	pair, meta, err := kv.Get("app/a", nil)
	if err != nil || pair == nil {
		t.Fatalf("Get: %v %v", pair, err)
	}
	if string(pair.Value) != "one" || pair.Flags != 42 || pair.Session != "" || pair.LockIndex != 0 {
		t.Errorf("Get app/a = %+v", pair)
	}
	if pair.CreateIndex == 0 || pair.ModifyIndex != pair.CreateIndex {
		t.Errorf("a new key's indexes: create %d modify %d", pair.CreateIndex, pair.ModifyIndex)
	}
	if meta.LastIndex < pair.ModifyIndex || !meta.KnownLeader {
		t.Errorf("QueryMeta = %+v", meta)
	}
	missing, meta2, err := kv.Get("app/none", nil)
	if err != nil || missing != nil {
		t.Errorf("Get missing = %v, %v", missing, err)
	}
	if meta2.LastIndex == 0 {
		t.Errorf("a missing key's read has index 0")
	}
	pairs, _, err := kv.List("app/", nil)
	if err != nil || len(pairs) != 2 || pairs[0].Key != "app/a" || pairs[1].Key != "app/b" {
		t.Errorf("List = %v, %v", pairs, err)
	}
	keys, _, err := kv.Keys("app/", "", nil)
	if err != nil || len(keys) != 2 {
		t.Errorf("Keys = %v, %v", keys, err)
	}
	if _, err := kv.Delete("app/a", nil); err != nil {
		t.Fatal(err)
	}
	if pair, _, _ := kv.Get("app/a", nil); pair != nil {
		t.Errorf("app/a still there after Delete")
	}
	if _, err := kv.DeleteTree("app/", nil); err != nil {
		t.Fatal(err)
	}
	if pairs, _, _ := kv.List("app/", nil); len(pairs) != 0 {
		t.Errorf("List after DeleteTree = %v", pairs)
	}
}

func TestKVCheckAndSet(t *testing.T) {
	kv := devagent.Start(t).Client.KV()
	ok, _, err := kv.CAS(&api.KVPair{Key: "cas", Value: []byte("v1"), ModifyIndex: 0}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS with index 0 on a missing key = %v, %v", ok, err)
	}
	ok, _, _ = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("again"), ModifyIndex: 0}, nil)
	if ok {
		t.Errorf("CAS with index 0 on an existing key succeeded")
	}
	pair, _, _ := kv.Get("cas", nil)
	ok, _, _ = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("v2"), ModifyIndex: pair.ModifyIndex + 1}, nil)
	if ok {
		t.Errorf("CAS with a wrong index succeeded")
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "cas", Value: []byte("v2"), ModifyIndex: pair.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS with the current index = %v, %v", ok, err)
	}
	after, _, _ := kv.Get("cas", nil)
	if string(after.Value) != "v2" || after.ModifyIndex <= pair.ModifyIndex || after.CreateIndex != pair.CreateIndex {
		t.Errorf("after CAS: %+v (before %+v)", after, pair)
	}
	ok, _, _ = kv.DeleteCAS(&api.KVPair{Key: "cas", ModifyIndex: pair.ModifyIndex}, nil)
	if ok {
		t.Errorf("DeleteCAS with a stale index succeeded")
	}
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "cas", ModifyIndex: after.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Errorf("DeleteCAS with the current index = %v, %v", ok, err)
	}
}

func TestKVAcquireRelease(t *testing.T) {
	client := devagent.Start(t).Client
	kv := client.KV()
	s1 := mustSession(t, client, &api.SessionEntry{Name: "one", TTL: "10s"})
	s2 := mustSession(t, client, &api.SessionEntry{Name: "two", TTL: "10s"})
	ok, _, err := kv.Acquire(&api.KVPair{Key: "lead", Value: []byte("s1"), Session: s1, Flags: 7}, nil)
	if err != nil || !ok {
		t.Fatalf("Acquire = %v, %v", ok, err)
	}
	pair, _, _ := kv.Get("lead", nil)
	if pair.Session != s1 || pair.LockIndex != 1 || pair.Flags != 7 || string(pair.Value) != "s1" {
		t.Errorf("held key = %+v", pair)
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "lead", Session: s2}, nil); ok {
		t.Errorf("a second session acquired a held key")
	}
	if ok, _, _ := kv.Release(&api.KVPair{Key: "lead", Session: s2}, nil); ok {
		t.Errorf("a session that does not hold the key released it")
	}
	ok, _, err = kv.Release(&api.KVPair{Key: "lead", Session: s1, Flags: 7}, nil)
	if err != nil || !ok {
		t.Fatalf("Release = %v, %v", ok, err)
	}
	released, _, _ := kv.Get("lead", nil)
	if released.Session != "" || released.LockIndex != 1 || released.Flags != 7 {
		t.Errorf("released key = %+v", released)
	}
	if ok, _, _ := kv.Acquire(&api.KVPair{Key: "lead", Session: s2}, nil); !ok {
		t.Errorf("acquire right after an explicit release failed (a release has no lock-delay)")
	}
	again, _, _ := kv.Get("lead", nil)
	if again.LockIndex != 2 || again.Session != s2 {
		t.Errorf("second acquisition = %+v", again)
	}
	if _, _, err := kv.Acquire(&api.KVPair{Key: "other", Session: "00000000-0000-0000-0000-000000000000"}, nil); err == nil {
		t.Errorf("acquire with an unknown session did not fail")
	}
}

func TestKVSessionInvalidationDeletesOrReleases(t *testing.T) {
	client := devagent.Start(t).Client
	kv := client.KV()
	for _, behavior := range []string{api.SessionBehaviorDelete, api.SessionBehaviorRelease} {
		key := "inv/" + behavior
		id := mustSession(t, client, &api.SessionEntry{TTL: "10s", Behavior: behavior, LockDelay: time.Millisecond})
		if ok, _, err := kv.Acquire(&api.KVPair{Key: key, Value: []byte("x"), Session: id}, nil); !ok || err != nil {
			t.Fatalf("Acquire: %v %v", ok, err)
		}
		if _, err := client.Session().Destroy(id, nil); err != nil {
			t.Fatal(err)
		}
		pair, _, _ := kv.Get(key, nil)
		switch behavior {
		case api.SessionBehaviorDelete:
			if pair != nil {
				t.Errorf("delete behaviour left the key: %+v", pair)
			}
		default:
			if pair == nil || pair.Session != "" || !bytes.Equal(pair.Value, []byte("x")) {
				t.Errorf("release behaviour: key = %+v", pair)
			}
		}
	}
}

func TestKVBlockingWaitIndex(t *testing.T) {
	kv := devagent.Start(t).Client.KV()
	if _, err := kv.Put(&api.KVPair{Key: "watch", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, _ := kv.Get("watch", nil)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = kv.Put(&api.KVPair{Key: "watch", Value: []byte("2")}, nil)
	}()
	began := time.Now()
	pair, meta2, err := kv.Get("watch", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Second})
	took := time.Since(began)
	if err != nil || pair == nil || string(pair.Value) != "2" {
		t.Fatalf("blocking Get = %v, %v", pair, err)
	}
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("the blocking Get returned after %s, not when the key changed (~300ms)", took)
	}
	if meta2.LastIndex <= meta.LastIndex {
		t.Errorf("index did not move: %d -> %d", meta.LastIndex, meta2.LastIndex)
	}
	// No change: the query waits WaitTime (Consul adds up to 1/16 jitter) and keeps the index.
	began = time.Now()
	_, meta3, err := kv.Get("watch", &api.QueryOptions{WaitIndex: meta2.LastIndex, WaitTime: time.Second})
	took = time.Since(began)
	if err != nil || meta3.LastIndex != meta2.LastIndex {
		t.Errorf("timed-out blocking Get: index %d -> %d, %v", meta2.LastIndex, meta3.LastIndex, err)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("a blocking Get with WaitTime 1s took %s", took)
	}
	// A write to another key does not end a blocking query on this one.
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = kv.Put(&api.KVPair{Key: "elsewhere", Value: []byte("x")}, nil)
	}()
	began = time.Now()
	_, _, _ = kv.Get("watch", &api.QueryOptions{WaitIndex: meta3.LastIndex, WaitTime: time.Second})
	if took := time.Since(began); took < 900*time.Millisecond {
		t.Errorf("a write to another key ended the blocking Get after %s", took)
	}
}
