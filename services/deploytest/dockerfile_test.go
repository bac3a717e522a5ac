package deploytest

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// buildStage is the stage the final image copies its binary from.
func buildStage(t testing.TB, df dockerfile) (stage, stage) {
	t.Helper()
	if len(df.Stages) != 2 {
		t.Fatalf("Dockerfile: %d stages, want 2 (build, final)", len(df.Stages))
	}
	return df.Stages[0], df.Stages[1]
}

// TestDockerfileBuild runs the build stage's COPY and `go build` steps on
// a copy of only what they copy, then checks the binary works and carries
// the version passed as a build arg.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	build, final := buildStage(t, df)
	if !strings.HasPrefix(build.From, "golang:1.26") {
		t.Errorf("build stage FROM %s, want golang:1.26", build.From)
	}
	runs := strings.Join(instructionArgs(build.find("RUN")), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-tags nomsgpack", "-X main.version=${VERSION}", "go build"} {
		if !strings.Contains(runs, want) {
			t.Errorf("build stage RUN lacks %q", want)
		}
	}
	rootfs, err := emulateBuild(t, df, build, map[string]string{"VERSION": "deploytest"}, -1)
	if err != nil {
		t.Fatalf("the Dockerfile's build, from only what it copies: %v", err)
	}
	bin := filepath.Join(rootfs, finalBinarySource(t, final))
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "deploytest" {
		t.Errorf("%s version = %q, %v; want the VERSION build arg", bin, out, err)
	}
}

// TestDockerfileEveryCopyIsNeeded proves the build test would catch a
// missing COPY: without any one of them the build fails.
func TestDockerfileEveryCopyIsNeeded(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	build, _ := buildStage(t, df)
	for i, in := range build.find("COPY") {
		if _, err := emulateBuild(t, df, build, nil, i); err == nil {
			t.Errorf("the build succeeds without COPY %s: drop it, or the build test proves nothing", in.Args)
		}
	}
}

// TestDockerfileCopiesTheWorkspace names the module to add when go.work
// gains one (Go refuses a workspace whose modules are missing).
func TestDockerfileCopiesTheWorkspace(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork("go.work", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	build, _ := buildStage(t, parseDockerfile(t))
	var sources []string
	for _, in := range build.find("COPY") {
		f := strings.Fields(in.Args)
		sources = append(sources, f[:len(f)-1]...)
	}
	for _, u := range wf.Use {
		mod := path.Join(path.Clean(u.Path), "go.mod")
		if !slices.ContainsFunc(sources, func(src string) bool {
			src = strings.TrimSuffix(path.Clean(src), "/")
			return mod == src || strings.HasPrefix(mod, src+"/")
		}) {
			t.Errorf("go.work uses %s: the Dockerfile must COPY it (at least %s and its go.sum)", u.Path, mod)
		}
	}
}

func TestDockerfileFinalStage(t *testing.T) {
	t.Parallel()
	_, final := buildStage(t, parseDockerfile(t))
	if final.From != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.From)
	}
	users := final.find("USER")
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1].Args, "0") || users[len(users)-1].Args == "root" {
		t.Errorf("final stage USER %v: want a numeric non-root user (Kubernetes runAsNonRoot checks it)", users)
	}
	bin := "/" + strings.TrimPrefix(finalBinaryTarget(t, final), "/")
	eps := final.find("ENTRYPOINT")
	if len(eps) != 1 || !slices.Equal(execForm(t, "ENTRYPOINT", eps[0].Args), []string{bin}) {
		t.Errorf("ENTRYPOINT %v, want [%q]", eps, bin)
	}
	if hc := dockerfileHealthcheck(t); !slices.Equal(hc, []string{bin, "healthcheck"}) {
		t.Errorf("HEALTHCHECK CMD %q, want [%q, \"healthcheck\"]", hc, bin)
	}
	if ex := final.find("EXPOSE"); len(ex) != 1 || ex[0].Args != "8080" {
		t.Errorf("EXPOSE %v, want 8080 (HTTP_ADDR's default)", ex)
	}
	labels := strings.Join(instructionArgs(final.find("LABEL")), " ")
	for _, l := range []string{"title", "source", "version", "revision"} {
		if !strings.Contains(labels, "org.opencontainers.image."+l+"=") {
			t.Errorf("no OCI label org.opencontainers.image.%s", l)
		}
	}
}

// finalCopy is the final stage's COPY --from=<build stage> src dst.
func finalCopy(t testing.TB, final stage) []string {
	t.Helper()
	for _, in := range final.find("COPY") {
		f := strings.Fields(in.Args)
		if len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
			return f[1:]
		}
	}
	t.Fatal("final stage: no COPY --from=<build stage> <binary> <path>")
	return nil
}

func finalBinarySource(t testing.TB, final stage) string { return finalCopy(t, final)[0] }
func finalBinaryTarget(t testing.TB, final stage) string { return finalCopy(t, final)[1] }

func instructionArgs(ins []instruction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Args
	}
	return out
}
