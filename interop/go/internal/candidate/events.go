// Package candidate holds what both Go candidates share with the Python nodes of
// elect_helpers.node: the command line, the JSON-line event log, the /_health endpoint,
// the service registration, the leader's fenced writes and the process life cycle
// (ready pipe, SIGTERM step-down).
package candidate

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// Event is one line of a node's event log, field for field (and in the same order) as
// elect_helpers.events.EventLog writes it: time is wall-clock seconds rounded to the
// microsecond, token and session are null when they do not apply.
type Event struct {
	Time    float64 `json:"time"`
	Node    string  `json:"node"`
	Event   string  `json:"event"`
	Token   *uint64 `json:"token"`
	Session *string `json:"session"`
	Detail  string  `json:"detail"`
}

// EventLog appends one node's events to a file opened with O_APPEND (or to standard
// output), one write(2) per line, so that several processes can share the file without
// tearing lines, as the Python nodes do.
type EventLog struct {
	node string
	mu   sync.Mutex
	file *os.File
}

// OpenEventLog opens path for appending (created 0644 if missing); "" means stdout.
func OpenEventLog(path, node string) (*EventLog, error) {
	if path == "" {
		return &EventLog{node: node, file: os.Stdout}, nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the event file: %w", err)
	}
	return &EventLog{node: node, file: file}, nil
}

// Emit writes one event stamped with the current time; token 0 and session "" are null.
// Events emitted after Close are dropped.
func (l *EventLog) Emit(event string, token uint64, session, detail string) {
	now := float64(time.Now().UnixMicro()) / 1e6
	record := Event{Time: math.Round(now*1e6) / 1e6, Node: l.node, Event: event, Detail: detail}
	if token != 0 {
		record.Token = &token
	}
	if session != "" {
		record.Session = &session
	}
	line, err := json.Marshal(record)
	if err != nil { // cannot happen for these field types
		panic(err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(line)
	}
}

// Close closes the file (not stdout); later events are dropped.
func (l *EventLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil && l.file != os.Stdout {
		_ = l.file.Close()
	}
	l.file = nil
}
