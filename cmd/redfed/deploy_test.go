package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
)

// The systemd units of deploy/, as installed: redfed in /usr/bin, the
// federation file and the secrets in /etc/redfed.
const (
	unitDir    = "../../deploy"
	unitBinary = "/usr/bin/redfed"
	unitConfig = "/etc/redfed/federation.yaml"
	// The most exposure systemd-analyze security may find, in tenths: its
	// scale runs from 0 (locked down) to 10, and --threshold takes 0 to 100.
	unitExposureOK = "20"
)

var unitNames = []string{"redfed-sync.service", "redfed-serve.service"}

// unit is a systemd unit file: each key of its [Service] section with its
// values in order.
type unit map[string][]string

func readUnit(t *testing.T, name string) (text string, service unit) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(unitDir, name))
	require.NoError(t, err)
	service = unit{}
	var section string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q is not KEY=VALUE", name, line)
			service[k] = append(service[k], v)
		}
	}
	return string(data), service
}

// one returns the value of a key set once.
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	require.Len(t, u[key], 1, "%s=", key)
	return u[key][0]
}

// buildRedfed builds redfed from this tree, for a test that runs it as
// its own process, and returns the program's path.
func buildRedfed(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds redfed")
	binary := filepath.Join(t.TempDir(), "redfed")
	out, err := exec.CommandContext(t.Context(), goTool, "build", "-o", binary, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return binary
}

// TestUnitsVerify runs systemd-analyze verify on each unit, with ExecStart
// pointing at a redfed built from this tree (verify checks that the
// program exists), and holds their hardening to an exposure level.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "systemd-analyze checks the units: apt-get install systemd (scripts/test does)")
	binary := buildRedfed(t)
	dir := t.TempDir()

	for _, name := range unitNames {
		t.Run(name, func(t *testing.T) {
			text, service := readUnit(t, name)
			require.Contains(t, service.one(t, "ExecStart"), unitBinary+" ", "ExecStart runs the installed redfed")
			path := filepath.Join(dir, name) // verify wants the unit's own name
			require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(text, unitBinary, binary)), 0o644))

			out, err := exec.CommandContext(t.Context(), analyze, "verify", path).CombinedOutput()
			require.NoError(t, err, "systemd-analyze verify %s: %s", name, out)
			assert.Empty(t, string(out), "systemd-analyze verify %s says something", name)

			out, err = exec.CommandContext(t.Context(), analyze, "security", "--offline=true",
				"--threshold="+unitExposureOK, path).CombinedOutput()
			require.NoError(t, err, "systemd-analyze security %s: exposure above %s tenths: %s", name, unitExposureOK, out)
			assert.Regexp(t, `Overall exposure level for `+regexp.QuoteMeta(name)+`: [0-9.]+ OK`, string(out))
		})
	}
}

// TestUnitsOwnSettings checks what each unit must say beyond what verify
// checks: a dedicated user, the reload, the restart policy, the hardening
// asked of every service, and a credential for each %d file it reads.
func TestUnitsOwnSettings(t *testing.T) {
	for _, name := range unitNames {
		t.Run(name, func(t *testing.T) {
			_, service := readUnit(t, name)
			for key, want := range map[string]string{
				"User": "redfed", "Group": "redfed",
				"ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure", "RestartPreventExitStatus": "2",
				"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
				"PrivateDevices": "yes", "CapabilityBoundingSet": "", "UMask": "0077",
			} {
				assert.Equal(t, want, service.one(t, key), "%s=", key)
			}
			exec := service.one(t, "ExecStart")
			assert.Contains(t, exec, " --config "+unitConfig+" ")
			creds := map[string]bool{}
			for _, c := range service["LoadCredential"] {
				id, path, _ := strings.Cut(c, ":")
				assert.True(t, strings.HasPrefix(path, "/etc/redfed/"), "LoadCredential=%s: a file in /etc/redfed", c)
				creds[id] = true
			}
			for _, m := range regexp.MustCompile(`%d/([\w.-]+)`).FindAllStringSubmatch(exec, -1) {
				assert.True(t, creds[m[1]], "ExecStart reads %%d/%s: want LoadCredential=%s:...", m[1], m[1])
			}
			assert.NotContains(t, exec, "--token ", "a token on the command line shows in ps")
		})
	}
}

// execStart returns the argument list systemd makes of a unit's ExecStart:
// split at spaces; %d the credentials directory; ${VAR} a single argument,
// empty when VAR is unset; $VAR its value split at spaces, none when it is
// unset or empty. The federation file is the test's. The program is left
// out: it must be the installed redfed.
func execStart(t *testing.T, service unit, credentials, config string, env map[string]string) []string {
	t.Helper()
	for _, e := range service["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		if _, set := env[k]; !set { // an EnvironmentFile= overrides Environment=
			env[k] = v
		}
	}
	words := strings.Fields(service.one(t, "ExecStart"))
	require.Equal(t, unitBinary, words[0])
	braced := regexp.MustCompile(`\$\{(\w+)\}`)
	var args []string
	for _, w := range words[1:] {
		w = strings.ReplaceAll(w, "%d", credentials)
		if bare, ok := strings.CutPrefix(w, "$"); ok && !strings.HasPrefix(bare, "{") {
			args = append(args, strings.Fields(env[bare])...)
			continue
		}
		args = append(args, braced.ReplaceAllStringFunc(w, func(m string) string { return env[m[2:len(m)-1]] }))
	}
	for i, a := range args {
		if a == unitConfig {
			args[i] = config
		}
	}
	return args
}

// unitFleet starts a replica group of two servers that demand a password,
// and writes a federation file without it and the credentials directory
// the units read it from. client, given the password, checks what the
// units do.
func unitFleet(t *testing.T) (servers []*redistest.Server, config, credentials string, client *federated.Client) {
	t.Helper()
	const password = "unit-pa55word"
	for range 2 {
		servers = append(servers, redistest.StartT(t, redistest.Options{Args: []string{"--requirepass", password}}))
	}
	config = writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\noptions: {command_timeout: 2s, base_retry_interval: 50ms}\n",
		servers[0].Addr(), servers[1].Addr()))
	credentials = t.TempDir()
	for name, secret := range map[string]string{"redis-password": password, "dashboard-token": "unit-test-token-0123456789"} {
		require.NoError(t, os.WriteFile(filepath.Join(credentials, name), []byte(secret+"\n"), 0o600))
	}
	cfg, err := federated.LoadConfig(config)
	require.NoError(t, err)
	cfg.Options.Password = password
	client, err = federated.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return servers, config, credentials, client
}

// unitProcess is a unit's command line running in-process.
type unitProcess struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	ended          chan struct{} // closed when run returns
	code           int           // run's exit code, once ended
}

// startUnit runs a unit's command line in-process until the test stops
// it; the test's end stops it if the test did not.
func startUnit(t *testing.T, args []string) *unitProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &unitProcess{cancel: cancel, ended: make(chan struct{})}
	go func() {
		defer close(p.ended)
		p.code = run(ctx, args, strings.NewReader(""), &p.stdout, &p.stderr)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// waitFor polls cond until it holds, failing the test at once if the
// command ends first.
func (p *unitProcess) waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		select {
		case <-p.ended:
			t.Fatalf("%s: the command ended first, exit %d; stderr: %s", what, p.code, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s; stderr: %s", what, p.stderr.String())
		}
	}
}

// stop cancels the command, as systemctl stop's SIGTERM does, and returns
// its exit code.
func (p *unitProcess) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case <-p.ended:
		return p.code
	case <-time.After(10 * time.Second):
		t.Fatalf("the command did not stop within 10 s of SIGTERM; stderr: %s", p.stderr.String())
		return -1
	}
}

// TestSyncUnitCommandLine runs redfed-sync.service's command line, as
// systemd expands it with the environment file the README shows, against
// real servers with a password: it replicates, and stops cleanly.
func TestSyncUnitCommandLine(t *testing.T) {
	_, service := readUnit(t, "redfed-sync.service")
	servers, config, credentials, client := unitFleet(t)
	for _, metrics := range []string{"127.0.0.1:0", ""} { // REDFED_SYNC_METRICS set, and left out
		t.Run("metrics "+metrics, func(t *testing.T) {
			env := map[string]string{"REDFED_SYNC_LOCAL": servers[0].Addr()}
			if metrics != "" {
				env["REDFED_SYNC_METRICS"] = metrics
			}
			args := execStart(t, service, credentials, config, env)
			p := startUnit(t, args)

			key, err := client.MetricKey(day, "web1.sfo", "m"+metrics)
			require.NoError(t, err)
			_, err = merge(t.Context(), client, servers[1].Addr(), []journal.KeyMembers{{Key: key, Members: []string{"1795600800:1"}}})
			require.NoError(t, err)
			local, err := client.ServerClient(servers[0].Addr())
			require.NoError(t, err)
			p.waitFor(t, func() bool {
				n, _ := local.ZCard(t.Context(), key).Result()
				return n == 1
			}, "the local server pulls its peer's point")
			assert.Equal(t, 0, p.stop(t), "stderr: %s", p.stderr.String())
			stderr := p.stderr.String()
			assert.Equal(t, metrics != "", strings.Contains(stderr, `"msg":"serving Prometheus metrics"`),
				"metrics served only with REDFED_SYNC_METRICS; stderr: %s", stderr)
			assert.Contains(t, stderr, `"msg":"syncer stopped"`, "JSON log lines")
		})
	}
}

// TestServeUnitCommandLine runs redfed-serve.service's command line, as
// systemd expands it with an environment file that sets more flags: the
// dashboard answers with the token and the password of the credentials.
func TestServeUnitCommandLine(t *testing.T) {
	_, service := readUnit(t, "redfed-serve.service")
	_, config, credentials, client := unitFleet(t)
	require.NoError(t, client.Record(t.Context(), "web1.sfo", "cpu.user", time.Now(), 1))

	args := execStart(t, service, credentials, config, map[string]string{
		"REDFED_SERVE_LISTEN": "127.0.0.1:0",
		"REDFED_SERVE_FLAGS":  "--check-every 0 --allow-host dash.internal",
	})
	p := startUnit(t, args)
	addr := regexp.MustCompile(`dashboard: http://(\S+)/`)
	p.waitFor(t, func() bool { return addr.MatchString(p.stdout.String()) }, "serve says where it listens")
	base := "http://" + addr.FindStringSubmatch(p.stdout.String())[1]

	get := func(path, token string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var body strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&body)
		return res.StatusCode, body.String()
	}
	code, body := get("/api/hosts", "unit-test-token-0123456789")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"web1.sfo"`, "read with the credential's password")
	code, _ = get("/api/hosts", "")
	assert.Equal(t, http.StatusUnauthorized, code, "the credential's token is required")
	code, body = get("/readyz", "")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 0, p.stop(t), "stderr: %s", p.stderr.String())
}
