//go:build cgo

package kubernetes_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/atelier-vision/atelier/internal/servertest"
)

// stage is one FROM ... AS name section of a Containerfile.
type stage struct {
	name, from string
	lines      []string // instructions, continuation lines joined
}

// containerfile reads deploy/Containerfile: global ARG defaults and its stages.
func containerfile(t *testing.T) (map[string]string, []stage) {
	t.Helper()
	data, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "FROM":
			st := stage{from: f[1]}
			if len(f) == 4 && f[2] == "AS" {
				st.name = f[3]
			}
			stages = append(stages, st)
		case len(stages) == 0 && f[0] == "ARG":
			k, v, _ := strings.Cut(f[1], "=")
			args[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	for _, raw := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(raw), "#") {
			continue
		}
		if strings.HasSuffix(raw, "\\") {
			cur.WriteString(strings.TrimSuffix(raw, "\\") + " ")
			continue
		}
		cur.WriteString(raw)
		flush()
	}
	flush()
	return args, stages
}

func (s stage) find(instr string) []string {
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, instr+" ") {
			out = append(out, strings.TrimSpace(strings.TrimPrefix(l, instr)))
		}
	}
	return out
}

func stageNamed(t *testing.T, stages []stage, name string) stage {
	t.Helper()
	i := slices.IndexFunc(stages, func(s stage) bool { return s.name == name })
	if i < 0 {
		t.Fatalf("deploy/Containerfile has no stage %q", name)
	}
	return stages[i]
}

// TestContainerfile checks the image build statically (no container engine runs
// here): the pinned wheel, the Go version, the link flags, a non-root user that the
// Deployment runs as, ports and flags atelierd has.
func TestContainerfile(t *testing.T) {
	args, stages := containerfile(t)
	if len(stages) < 3 || stages[len(stages)-1].name != "runtime" {
		t.Fatalf("want stages ending in runtime, got %d stages", len(stages))
	}
	runtime := stages[len(stages)-1]

	t.Run("the pinned wheel", func(t *testing.T) {
		req, err := os.ReadFile("../../savedmodels/requirements.txt")
		if err != nil {
			t.Fatal(err)
		}
		pin := regexp.MustCompile(`(?m)^tensorflow-cpu==\S+`).FindString(string(req))
		if pin == "" || args["TENSORFLOW_WHEEL"] != pin {
			t.Errorf("TENSORFLOW_WHEEL=%q, savedmodels/requirements.txt pins %q", args["TENSORFLOW_WHEEL"], pin)
		}
	})
	t.Run("the go version of go.mod", func(t *testing.T) {
		mod, err := os.ReadFile("../../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		v := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(string(mod))
		if v == nil || !strings.Contains(args["GO_IMAGE"], "golang:"+v[1]+"-") {
			t.Errorf("GO_IMAGE=%q, go.mod says go %v", args["GO_IMAGE"], v)
		}
	})
	t.Run("linked as scripts/tfenv.sh links", func(t *testing.T) {
		env, err := os.ReadFile("../../scripts/tfenv.sh")
		if err != nil {
			t.Fatal(err)
		}
		b := strings.Join(stageNamed(t, stages, "build").find("RUN"), "\n")
		for _, want := range []string{"-ltensorflow -ltensorflow_framework", "-Wl,-rpath,"} {
			if !strings.Contains(string(env), want) || !strings.Contains(b, want) {
				t.Errorf("the build stage and scripts/tfenv.sh must both link with %q", want)
			}
		}
		if !strings.Contains(b, "go build") || !strings.Contains(b, "./server/cmd/atelierd") {
			t.Errorf("the build stage does not build ./server/cmd/atelierd")
		}
	})
	t.Run("the runtime carries both libraries where the build linked them", func(t *testing.T) {
		copies := strings.Join(runtime.find("COPY"), "\n")
		for _, lib := range []string{"${TF}/libtensorflow_cc.so.2", "${TF}/libtensorflow_framework.so.2"} {
			if !strings.Contains(copies, lib) {
				t.Errorf("the runtime stage does not copy %s", lib)
			}
		}
		if !strings.Contains(strings.Join(stageNamed(t, stages, "build").find("RUN"), ""), "-Wl,-rpath,${TF}") {
			t.Error("the binary's run-time search path is not ${TF}, where the runtime puts the libraries")
		}
	})
	s, _ := base(t)
	_, c := server(t, s)
	d := s.deployments["atelierd"]
	t.Run("non-root, the Deployment's user", func(t *testing.T) {
		users := runtime.find("USER")
		if len(users) != 1 {
			t.Fatalf("runtime USER %v, want one", users)
		}
		uid, gid, _ := strings.Cut(users[0], ":")
		u, err1 := strconv.ParseInt(uid, 10, 64)
		g, err2 := strconv.ParseInt(gid, 10, 64)
		if err1 != nil || err2 != nil || u == 0 {
			t.Fatalf("USER %q, want numeric uid:gid, not root (runAsNonRoot needs a number)", users[0])
		}
		sc := d.Spec.Template.Spec.SecurityContext
		if *sc.RunAsUser != u || *sc.RunAsGroup != g {
			t.Errorf("image user %d:%d, Deployment runs as %d:%d", u, g, *sc.RunAsUser, *sc.RunAsGroup)
		}
	})
	t.Run("ports and flags", func(t *testing.T) {
		var exposed []int32
		for _, e := range runtime.find("EXPOSE") {
			for _, p := range strings.Fields(e) {
				n, _ := strconv.Atoi(p)
				exposed = append(exposed, int32(n))
			}
		}
		for _, p := range c.Ports {
			if !slices.Contains(exposed, p.ContainerPort) {
				t.Errorf("containerPort %d (%s) is not EXPOSEd", p.ContainerPort, p.Name)
			}
		}
		flags := servertest.Flags(t)
		var cmd []string
		if cmds := runtime.find("CMD"); len(cmds) != 1 || json.Unmarshal([]byte(cmds[0]), &cmd) != nil {
			t.Fatalf("runtime CMD %v, want one exec-form CMD", cmds)
		}
		for name := range servertest.ParseArgs(t, cmd) {
			if _, ok := flags[name]; !ok {
				t.Errorf("CMD passes --%s, which atelierd --help does not list", name)
			}
		}
		vars := map[string]bool{}
		for _, v := range flags {
			vars[v] = true
		}
		for _, e := range runtime.find("ENV") {
			if k, _, _ := strings.Cut(e, "="); !vars[k] {
				t.Errorf("ENV %s is no flag's variable", k)
			}
		}
		if ep := runtime.find("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["/usr/local/bin/atelierd"]` {
			t.Errorf("ENTRYPOINT %v, want atelierd in exec form (so SIGTERM reaches it)", ep)
		}
	})
	t.Run("the build context leaves out the set-up products", func(t *testing.T) {
		data, err := os.ReadFile("../../.dockerignore")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for _, want := range []string{".venv", ".git", ".build", ".tools", "bin"} {
			if !slices.Contains(lines, want) {
				t.Errorf(".dockerignore does not leave out %s", want)
			}
		}
	})
	t.Run("a models image for the init container", func(t *testing.T) {
		m := stageNamed(t, stages, "models")
		copies := strings.Join(m.find("COPY"), "\n")
		for _, name := range []string{"classifier", "detector", "generator"} {
			if !strings.Contains(copies, "savedmodels/"+name+"/ /models/"+name+"/") {
				t.Errorf("the models stage does not copy %s to /models", name)
			}
		}
	})
}
