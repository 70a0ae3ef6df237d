// Package devagent starts the tutorial's embedded Consul dev agent
// (python -m elect_helpers.devagent) for a Go test: on a free port, killed with the test
// process, stopped when the test ends.
//
// The Python interpreter is $ELECT_PYTHON, or else the repository's .venv/bin/python
// (made by ./run-tests.sh), found by walking up from the working directory to the
// directory holding pyproject.toml.
package devagent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// PythonEnv names the variable that overrides the Python interpreter.
const PythonEnv = "ELECT_PYTHON"

const startTimeout = 20 * time.Second

var addressLine = regexp.MustCompile(`^\s*HTTP address:\s*http://(\S+)\s*$`)

// Agent is one running embedded agent.
type Agent struct {
	Addr   string // host:port
	Client *api.Client
	cmd    *exec.Cmd
	output *tail
}

// Options are the agent's flags (as consul agent spells them).
type Options struct {
	SessionTTLMin string // default "1s"
}

// RepoRoot is the directory holding pyproject.toml above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "pyproject.toml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no pyproject.toml above the working directory")
		}
		dir = parent
	}
}

// Python is the interpreter that runs the agent: $ELECT_PYTHON or <repo>/.venv/bin/python.
func Python() (string, error) {
	if python := os.Getenv(PythonEnv); python != "" {
		return python, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	python := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return "", fmt.Errorf("%s not found: run ./run-tests.sh once to create .venv, "+
			"or set %s to a Python with this package installed", python, PythonEnv)
	}
	return python, nil
}

// Start starts an agent for t and stops it when t ends; it fails t if the agent cannot start.
func Start(t testing.TB, opts ...Options) *Agent {
	t.Helper()
	o := Options{SessionTTLMin: "1s"}
	if len(opts) > 0 && opts[0].SessionTTLMin != "" {
		o.SessionTTLMin = opts[0].SessionTTLMin
	}
	agent, err := start(o)
	if err != nil {
		t.Fatalf("starting the embedded dev agent: %v", err)
	}
	t.Cleanup(agent.Stop)
	return agent
}

func start(o Options) (*Agent, error) {
	python, err := Python()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, "-m", "elect_helpers.devagent", "-http-port", "0",
		"-session-ttl-min", o.SessionTTLMin, "-log-level", "warn")
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // no orphan agents
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	output := &tail{}
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", python, err)
	}
	agent := &Agent{cmd: cmd, output: output}
	found := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			_, _ = output.Write([]byte(line + "\n"))
			if match := addressLine.FindStringSubmatch(line); match != nil {
				select {
				case found <- match[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case agent.Addr = <-found:
	case <-time.After(startTimeout):
		agent.Stop()
		return nil, fmt.Errorf("no 'HTTP address:' line within %s; its output:\n%s",
			startTimeout, output)
	}
	config := api.DefaultConfig()
	config.Address = agent.Addr
	agent.Client, err = api.NewClient(config)
	if err != nil {
		agent.Stop()
		return nil, err
	}
	if err := agent.waitForLeader(); err != nil {
		agent.Stop()
		return nil, err
	}
	return agent, nil
}

func (a *Agent) waitForLeader() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if leader, err := a.Client.Status().Leader(); err == nil && leader != "" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no leader within %s; its output:\n%s", startTimeout, a.output)
}

// URL is http://host:port.
func (a *Agent) URL() string { return "http://" + a.Addr }

// Get does a plain GET on the agent (for headers the client does not expose).
func (a *Agent) Get(path string) (*http.Response, error) {
	return http.Get(a.URL() + path)
}

// Stop terminates the agent (SIGTERM, SIGKILL after 5s) and reaps it.
func (a *Agent) Stop() {
	if a.cmd.Process == nil || a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = a.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
}

// tail keeps the last lines the agent printed, for failure messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if len(t.lines) > 50 {
		t.lines = t.lines[len(t.lines)-50:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
