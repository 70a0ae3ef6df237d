package consulapi

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"electhelpers/interop/internal/devagent"
)

func newLock(t *testing.T, client *api.Client, opts api.LockOptions) *api.Lock {
	t.Helper()
	lock, err := client.LockOpts(&opts)
	if err != nil {
		t.Fatalf("LockOpts: %v", err)
	}
	return lock
}

func lockOrFail(t *testing.T, lock *api.Lock) <-chan struct{} {
	t.Helper()
	lost, err := lock.Lock(nil)
	if err != nil || lost == nil {
		t.Fatalf("Lock = %v, %v", lost, err)
	}
	return lost
}

func TestLockDefaultsAcquireAndTheKey(t *testing.T) {
	client := devagent.Start(t).Client
	opts := &api.LockOptions{Key: "service/web/leader", Value: []byte("me")}
	lock, err := client.LockOpts(opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.SessionTTL != "15s" || opts.SessionName != "Consul API Lock" ||
		opts.LockWaitTime != 15*time.Second || opts.MonitorRetryTime != 2*time.Second {
		t.Errorf("LockOpts defaults: %+v", opts)
	}
	lost := lockOrFail(t, lock)
	pair, _, _ := client.KV().Get("service/web/leader", nil)
	if pair == nil || pair.Flags != api.LockFlagValue || pair.Session == "" || string(pair.Value) != "me" || pair.LockIndex != 1 {
		t.Fatalf("the lock key = %+v", pair)
	}
	info, _, _ := client.Session().Info(pair.Session, nil)
	if info == nil || info.Name != "Consul API Lock" || info.TTL != "15s" || info.LockDelay != 15*time.Second ||
		info.Behavior != "release" {
		t.Errorf("the lock's session = %+v", info)
	}
	if _, err := lock.Lock(nil); !errors.Is(err, api.ErrLockHeld) {
		t.Errorf("a second Lock() = %v, want ErrLockHeld", err)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Errorf("the lock channel stayed open after Unlock")
	}
	released, _, _ := client.KV().Get("service/web/leader", nil)
	if released == nil || released.Session != "" || released.Flags != api.LockFlagValue {
		t.Errorf("the key after Unlock = %+v", released)
	}
	if err := lock.Unlock(); !errors.Is(err, api.ErrLockNotHeld) {
		t.Errorf("a second Unlock() = %v, want ErrLockNotHeld", err)
	}
	// Unlock closes the renewal, and RenewPeriodic destroys the session.
	deadline := time.Now().Add(3 * time.Second)
	for {
		if info, _, _ := client.Session().Info(pair.Session, nil); info == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock's session survived Unlock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := lock.Destroy(); err != nil {
		t.Errorf("Destroy of a free lock: %v", err)
	}
	if pair, _, _ := client.KV().Get("service/web/leader", nil); pair != nil {
		t.Errorf("Destroy left the key: %+v", pair)
	}
}

func TestLockContentionAndLockWaitTime(t *testing.T) {
	client := devagent.Start(t).Client
	first := newLock(t, client, api.LockOptions{Key: "contended", SessionTTL: "2s"})
	lockOrFail(t, first)
	// LockTryOnce: one blocking wait of LockWaitTime, then give up with (nil, nil).
	second := newLock(t, client, api.LockOptions{Key: "contended", SessionTTL: "2s",
		LockTryOnce: true, LockWaitTime: 700 * time.Millisecond})
	began := time.Now()
	lost, err := second.Lock(nil)
	took := time.Since(began)
	if err != nil || lost != nil {
		t.Fatalf("contended LockTryOnce = %v, %v", lost, err)
	}
	if took < 650*time.Millisecond || took > 5*time.Second {
		t.Errorf("LockTryOnce with LockWaitTime 700ms gave up after %s", took)
	}
	if err := first.Destroy(); !errors.Is(err, api.ErrLockHeld) {
		t.Errorf("Destroy while holding = %v, want ErrLockHeld", err)
	}
	if err := second.Destroy(); !errors.Is(err, api.ErrLockInUse) {
		t.Errorf("Destroy of someone else's held lock = %v, want ErrLockInUse", err)
	}
	// A waiting Lock() takes over as soon as the holder unlocks (a release has no lock-delay).
	third := newLock(t, client, api.LockOptions{Key: "contended", SessionTTL: "2s", LockWaitTime: time.Second})
	got := make(chan time.Time, 1)
	go func() {
		if lost, err := third.Lock(nil); err == nil && lost != nil {
			got <- time.Now()
		}
	}()
	time.Sleep(1500 * time.Millisecond) // longer than a LockWaitTime: it waited more than once
	unlocked := time.Now()
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		if at.Sub(unlocked) > time.Second {
			t.Errorf("the waiting Lock() took %s after Unlock", at.Sub(unlocked))
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the waiting Lock() never got the lock")
	}
	// Lock() with a closed stop channel gives up with (nil, nil).
	stop := make(chan struct{})
	close(stop)
	fourth := newLock(t, client, api.LockOptions{Key: "contended", SessionTTL: "2s"})
	if lost, err := fourth.Lock(stop); lost != nil || err != nil {
		t.Errorf("Lock(closed stop) = %v, %v", lost, err)
	}
	_ = third.Unlock()
}

func TestLockLostWhenTheSessionIsInvalidated(t *testing.T) {
	client := devagent.Start(t).Client
	lock := newLock(t, client, api.LockOptions{Key: "fragile", SessionTTL: "10s", LockDelay: time.Second})
	lost := lockOrFail(t, lock)
	pair, _, _ := client.KV().Get("fragile", nil)
	if _, err := client.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatalf("the lock channel did not close after its session was destroyed")
	}
	// The lock-delay: a new Lock() waits it out (api.Lock retries after DefaultLockRetryTime).
	next := newLock(t, client, api.LockOptions{Key: "fragile", SessionTTL: "10s"})
	began := time.Now()
	lockOrFail(t, next)
	if took := time.Since(began); took < 900*time.Millisecond {
		t.Errorf("a Lock() right after an invalidation with a 1s lock-delay took only %s", took)
	}
	if err := lock.Unlock(); err != nil { // a lost lock: Unlock resets it without error
		t.Errorf("Unlock of a lost lock: %v", err)
	}
	_ = next.Unlock()
}

func TestLockRefusesAKeyWithOtherFlags(t *testing.T) {
	client := devagent.Start(t).Client
	if _, err := client.KV().Put(&api.KVPair{Key: "plain", Value: []byte("x"), Flags: 1}, nil); err != nil {
		t.Fatal(err)
	}
	lock := newLock(t, client, api.LockOptions{Key: "plain"})
	if _, err := lock.Lock(nil); !errors.Is(err, api.ErrLockConflict) {
		t.Errorf("Lock on a key with other flags = %v, want ErrLockConflict", err)
	}
	if err := lock.Destroy(); !errors.Is(err, api.ErrLockConflict) {
		t.Errorf("Destroy of a key with other flags = %v, want ErrLockConflict", err)
	}
}

func TestSemaphore(t *testing.T) {
	client := devagent.Start(t).Client
	newSem := func(opts api.SemaphoreOptions) *api.Semaphore {
		sem, err := client.SemaphoreOpts(&opts)
		if err != nil {
			t.Fatal(err)
		}
		return sem
	}
	a := newSem(api.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "2s"})
	b := newSem(api.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "2s"})
	c := newSem(api.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "2s",
		SemaphoreTryOnce: true, SemaphoreWaitTime: 600 * time.Millisecond})
	for name, sem := range map[string]*api.Semaphore{"a": a, "b": b} {
		if lost, err := sem.Acquire(nil); err != nil || lost == nil {
			t.Fatalf("Acquire %s = %v, %v", name, lost, err)
		}
	}
	lockPair, _, _ := client.KV().Get("sem/.lock", nil)
	if lockPair == nil || lockPair.Flags != api.SemaphoreFlagValue {
		t.Fatalf("the semaphore's .lock key = %+v", lockPair)
	}
	contenders, _, _ := client.KV().List("sem/", nil)
	if len(contenders) != 3 {
		t.Errorf("keys under sem/: %d, want .lock and two contenders", len(contenders))
	}
	began := time.Now()
	if lost, err := c.Acquire(nil); lost != nil || err != nil {
		t.Fatalf("a third holder of a limit-2 semaphore: %v, %v", lost, err)
	}
	if took := time.Since(began); took < 550*time.Millisecond {
		t.Errorf("SemaphoreTryOnce gave up after %s, before SemaphoreWaitTime", took)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	d := newSem(api.SemaphoreOptions{Prefix: "sem/", Limit: 2, SessionTTL: "2s"})
	if lost, err := d.Acquire(nil); err != nil || lost == nil {
		t.Fatalf("Acquire after a release = %v, %v", lost, err)
	}
	if err := a.Destroy(); !errors.Is(err, api.ErrSemaphoreInUse) {
		t.Errorf("Destroy while others hold the semaphore = %v, want ErrSemaphoreInUse", err)
	}
	_ = b.Release()
	_ = d.Release()
	if err := d.Destroy(); err != nil {
		t.Errorf("Destroy after every release: %v", err)
	}
	if keys, _, _ := client.KV().Keys("sem/", "", nil); len(keys) != 0 {
		t.Errorf("keys left after Destroy: %v", keys)
	}
}
