package candidate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// WokeSlack is how much longer than planned a tick may take before the writer concludes
// the process was frozen (SIGSTOP), as in elect_helpers.node.writer.
const WokeSlack = 500 * time.Millisecond

// Writer is the leader's work, with the shape of elect_helpers.node.writer.LeaderWriter:
// it decides "I lead with token T", waits one interval, then writes "<node> #<n>" with T
// to each resource (the fenced one refuses a token lower than one it has seen). The wire
// format is elect_helpers.fencing's: POST {"token", "writer", "value"}, 200 or 409.
type Writer struct {
	node     string
	urls     [][2]string // (kind, url), fenced first
	interval time.Duration
	log      *EventLog
	session  func() string
	client   http.Client

	mu       sync.Mutex
	cond     *sync.Cond
	token    uint64
	stopping bool
	done     chan struct{}
	seq      int
	last     map[string]string
}

// NewWriter returns a writer for the given resources; start it with Start.
func NewWriter(opts Options, log *EventLog, session func() string) *Writer {
	w := &Writer{
		node: opts.Name, interval: opts.WriteInterval, log: log, session: session,
		client: http.Client{Timeout: 2 * time.Second},
		done:   make(chan struct{}), last: map[string]string{},
	}
	if opts.Resource != "" {
		w.urls = append(w.urls, [2]string{"fenced", opts.Resource})
	}
	if opts.UnfencedResource != "" {
		w.urls = append(w.urls, [2]string{"unfenced", opts.UnfencedResource})
	}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// Start runs the loop in its own goroutine.
func (w *Writer) Start() { go w.run() }

// Lead makes the writer believe it leads with token from now on.
func (w *Writer) Lead(token uint64) {
	w.mu.Lock()
	w.token = token
	w.mu.Unlock()
	w.cond.Broadcast()
}

// Follow stops further ticks (a write already decided on may still happen).
func (w *Writer) Follow() {
	w.mu.Lock()
	w.token = 0
	w.mu.Unlock()
}

// Stop ends the loop without another write and waits up to two seconds for it.
func (w *Writer) Stop() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	w.cond.Broadcast()
	select {
	case <-w.done:
	case <-time.After(2 * time.Second):
	}
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for w.token == 0 && !w.stopping {
			w.cond.Wait()
		}
		token, stopping := w.token, w.stopping
		w.mu.Unlock()
		if stopping {
			return
		}
		planned := time.Now().Add(w.interval) // the decision: "I lead with this token"
		time.Sleep(w.interval)
		w.mu.Lock()
		stopping = w.stopping
		w.mu.Unlock()
		if stopping {
			return
		}
		// time.Now() reads the wall and monotonic clocks, and a frozen process's monotonic
		// clock keeps running, so a tick that took much longer than planned was a freeze.
		if late := time.Since(planned); late > WokeSlack {
			w.woke(token, fmt.Sprintf("was frozen for about %.1fs", (late+w.interval).Seconds()))
			w.writeAll(token, true)
		} else if w.writeAll(token, false) {
			w.woke(token, "was frozen in the middle of its writes")
			w.writeAll(token, true)
		}
	}
}

func (w *Writer) woke(token uint64, how string) {
	w.log.Emit("woke", token, w.session(),
		fmt.Sprintf("%s; still believes it leads and writes with token %d", how, token))
}

type writeAnswer struct {
	Accepted      bool    `json:"accepted"`
	Stale         bool    `json:"stale"`
	HighestBefore *uint64 `json:"highest_before"`
}

// writeAll makes one write per resource; true if a step took so long the process was frozen.
func (w *Writer) writeAll(token uint64, forceLog bool) bool {
	w.seq++
	value := fmt.Sprintf("%s #%d", w.node, w.seq)
	frozen := false
	for _, target := range w.urls {
		kind, url := target[0], target[1]
		began := time.Now()
		answer, err := w.post(url, token, value)
		if err != nil {
			if forceLog || w.last[kind] != err.Error() {
				w.log.Emit("write-error", token, "", kind+": "+err.Error())
			}
			w.last[kind] = err.Error()
		} else {
			w.logOutcome(kind, token, answer, forceLog)
		}
		frozen = frozen || time.Since(began) > WokeSlack
	}
	return frozen
}

func (w *Writer) post(url string, token uint64, value string) (writeAnswer, error) {
	var answer writeAnswer
	body, _ := json.Marshal(map[string]any{"token": token, "writer": w.node, "value": value})
	response, err := w.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return answer, fmt.Errorf("cannot write to %s: %v", url, err)
	}
	defer response.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(response.Body, 1<<16))
	if response.StatusCode != http.StatusOK && response.StatusCode != http.StatusConflict {
		return answer, fmt.Errorf("%s answered %d: %.200q", url, response.StatusCode, data)
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return answer, fmt.Errorf("cannot write to %s: %v", url, err)
	}
	return answer, nil
}

func (w *Writer) logOutcome(kind string, token uint64, answer writeAnswer, force bool) {
	state := fmt.Sprintf("%t/%d", answer.Accepted, token)
	if answer.Accepted && !force && w.last[kind] == state {
		return
	}
	w.last[kind] = state
	if answer.Accepted {
		note := ""
		if answer.Stale {
			note = " (stale: a newer token was seen)"
		}
		w.log.Emit("write-accepted", token, w.session(), kind+" resource accepted the write"+note)
		return
	}
	highest := "none"
	if answer.HighestBefore != nil {
		highest = fmt.Sprint(*answer.HighestBefore)
	}
	w.log.Emit("write-rejected", token, w.session(),
		fmt.Sprintf("%s resource rejected the write: it has seen token %s", kind, highest))
}
