package deploytest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildEmulation runs a Dockerfile build stage outside Docker: a fresh
// directory stands for the image's file system, only what the stage COPYs
// from the context (the repository minus .dockerignore) is put in it, and
// each RUN, which must be a `go` command, runs in it.
type buildEmulation struct {
	t       testing.TB
	context string // the repository
	rootfs  string
	ignore  *patternmatcher.PatternMatcher
	vars    map[string]string // ARG and ENV values in scope
	workdir string            // in the image, e.g. /src
}

// emulateBuild runs stage st with the build args given, leaving out the
// COPY with index skipCopy (-1: none). It returns the image root, and the
// error of the first step that failed.
func emulateBuild(t testing.TB, df dockerfile, st stage, args map[string]string, skipCopy int) (string, error) {
	t.Helper()
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	b := &buildEmulation{t: t, context: root, rootfs: t.TempDir(), ignore: pm, vars: argDefaults(df, st), workdir: "/"}
	for k, v := range args {
		b.vars[k] = v
	}
	copies := 0
	for _, in := range st.Ins {
		switch in.Cmd {
		case "WORKDIR":
			b.workdir = b.inImage(in.Args)
		case "ARG", "LABEL", "EXPOSE":
		case "ENV":
			k, v, _ := strings.Cut(in.Args, "=")
			b.vars[k] = os.Expand(strings.Trim(v, `"`), b.lookup)
		case "COPY":
			copies++
			if copies-1 == skipCopy {
				continue
			}
			if err := b.copy(in.Args); err != nil {
				return b.rootfs, fmt.Errorf("COPY %s: %w", in.Args, err)
			}
		case "RUN":
			if err := b.run(in.Args); err != nil {
				return b.rootfs, fmt.Errorf("RUN %s: %w", in.Args, err)
			}
		default:
			t.Fatalf("Dockerfile: %s in the build stage: this test cannot emulate it", in.Cmd)
		}
	}
	return b.rootfs, nil
}

func (b *buildEmulation) lookup(k string) string { return b.vars[k] }

// inImage resolves a path in the image against WORKDIR.
func (b *buildEmulation) inImage(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(b.workdir, p)
	}
	return path.Clean(p)
}

// host is where an image path lives in the emulation.
func (b *buildEmulation) host(p string) string { return filepath.Join(b.rootfs, filepath.FromSlash(p)) }

// copy does what COPY src... dst does with the build context.
func (b *buildEmulation) copy(args string) error {
	var f []string
	for _, a := range strings.Fields(args) {
		if strings.HasPrefix(a, "--from") {
			return fmt.Errorf("not from the build context")
		}
		if !strings.HasPrefix(a, "--") {
			f = append(f, a)
		}
	}
	srcs, dst := f[:len(f)-1], f[len(f)-1]
	toDir := strings.HasSuffix(dst, "/") || len(srcs) > 1
	dst = b.inImage(dst)
	for _, src := range srcs {
		src = path.Clean(strings.TrimPrefix(src, "/"))
		if strings.ContainsAny(src, "*?[") || strings.HasPrefix(src, "..") {
			return fmt.Errorf("%s: wildcards and paths outside the context are not emulated", src)
		}
		info, err := os.Stat(filepath.Join(b.context, src))
		if err != nil || b.ignored(src) {
			return fmt.Errorf("%s: not in the build context (missing or in .dockerignore)", src)
		}
		if !info.IsDir() {
			to := dst
			if toDir {
				to = path.Join(dst, path.Base(src))
			}
			if err := copyFile(filepath.Join(b.context, src), b.host(to)); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(filepath.Join(b.context, src), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(b.context, p)
			if b.ignored(filepath.ToSlash(rel)) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			under, _ := filepath.Rel(filepath.Join(b.context, src), p)
			return copyFile(p, b.host(path.Join(dst, filepath.ToSlash(under))))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *buildEmulation) ignored(rel string) bool {
	m, _ := b.ignore.MatchesOrParentMatches(rel)
	return m
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// run executes a RUN line: [--mount=...] [NAME=value...] go args...
func (b *buildEmulation) run(line string) error {
	words, err := shellwords.Parse(line)
	if err != nil {
		return err
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:] // --mount=type=cache,...: a cache, no effect on the result
	}
	env := map[string]string{}
	for len(words) > 0 && assignment.MatchString(words[0]) {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = os.Expand(v, b.lookup)
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "go" {
		return fmt.Errorf("only `go` commands are emulated, not %q", words)
	}
	argv := make([]string, len(words)-1)
	for i, w := range words[1:] {
		w = os.Expand(w, b.lookup)
		if path.IsAbs(w) {
			w = b.host(w) // e.g. -o /out/bbs
		}
		argv[i] = w
	}
	cmd := exec.Command("go", argv...)
	cmd.Dir = b.host(b.workdir)
	cmd.Env = buildEnv(b.vars, env)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// buildEnv is the host environment without what would make the build
// differ from the image's (a workspace file elsewhere, flags, a target),
// plus the stage's ARG/ENV values and the RUN line's assignments.
func buildEnv(vars, assigned map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOWORK", "GOFLAGS", "GOOS", "GOARCH", "CGO_ENABLED", "GOTOOLCHAIN":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOTOOLCHAIN=local") // the golang image's setting
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	for k, v := range assigned {
		env = append(env, k+"="+v)
	}
	return env
}
