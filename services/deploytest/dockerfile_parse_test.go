package deploytest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, COPY, RUN, ...
	Args string
}

// stage is one FROM and what follows it.
type stage struct {
	From, Name string
	Ins        []instruction
}

// dockerfile is the repository's Dockerfile: the ARGs before the first
// FROM, and its stages.
type dockerfile struct {
	GlobalArgs []instruction
	Stages     []stage
}

// parseDockerfile reads the subset of the syntax this repository uses:
// comments, `\` continuations, instructions. Heredocs are not supported.
func parseDockerfile(t testing.TB) dockerfile {
	t.Helper()
	var (
		df      dockerfile
		pending string
	)
	add := func(line string) {
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			st := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			df.Stages = append(df.Stages, st)
			return
		}
		if len(df.Stages) == 0 {
			df.GlobalArgs = append(df.GlobalArgs, in)
			return
		}
		last := &df.Stages[len(df.Stages)-1]
		last.Ins = append(last.Ins, in)
	}
	for _, line := range strings.Split(readFile(t, filepath.Join(repoRoot(t), "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending == "") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending += body + " "
			continue
		}
		add(pending + trimmed)
		pending = ""
	}
	if pending != "" {
		t.Fatal("Dockerfile ends in a continuation line")
	}
	return df
}

// find returns the instructions of a stage with the given command.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Ins {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes a JSON array argument (ENTRYPOINT, CMD): the exec form,
// which needs no shell in the image.
func execForm(t testing.TB, what, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatalf("Dockerfile %s %s: not the exec form [\"...\"] (the image has no shell): %v", what, args, err)
	}
	return argv
}

// dockerfileHealthcheck is the command of the final stage's HEALTHCHECK.
func dockerfileHealthcheck(t testing.TB) []string {
	t.Helper()
	df := parseDockerfile(t)
	final := df.Stages[len(df.Stages)-1]
	hcs := final.find("HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("Dockerfile: final stage has %d HEALTHCHECK, want 1", len(hcs))
	}
	_, cmd, ok := strings.Cut(hcs[0].Args, "CMD ")
	if !ok {
		t.Fatalf("Dockerfile: HEALTHCHECK %s has no CMD", hcs[0].Args)
	}
	return execForm(t, "HEALTHCHECK CMD", strings.TrimSpace(cmd))
}

// argDefaults collects ARG defaults, global and of one stage.
func argDefaults(df dockerfile, st stage) map[string]string {
	vars := map[string]string{}
	for _, in := range append(append([]instruction{}, df.GlobalArgs...), st.find("ARG")...) {
		name, def, _ := strings.Cut(in.Args, "=")
		vars[name] = strings.Trim(def, `"`)
	}
	return vars
}
