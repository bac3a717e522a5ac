package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bbsboard/bbs/pkg/config"
)

// help lists the commands runCommand runs and every setting with its
// default, from the table pkg/config reads them with.
func help(w io.Writer) error {
	commands := [][2]string{
		{"serve", "serve the board (the default)"},
		{"migrate", "apply the schema migrations to DATABASE_URL and exit"},
		{"healthcheck", "ask the server on HTTP_ADDR for /healthz (container health checks)"},
		{"config", "print the configuration the environment makes, secrets masked"},
		{"version", "print the version"},
		{"help", "print this (also -h, --help)"},
	}
	var b strings.Builder
	b.WriteString("Usage: bbs [command]\n\nCommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c[0], c[1])
	}
	tw.Flush()
	b.WriteString("\nEnvironment (README.md, \"Configuration\"):\n")
	for _, s := range config.Settings() {
		name := s.Name
		if s.Secret {
			name += " (secret: shown masked)"
		}
		fmt.Fprintf(&b, "  %s\n      %s\n      default: %s\n", name, s.Help, s.Default)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// showConfig prints every setting's value as the environment makes it,
// secrets masked, and whether it was set or is the default: what a
// replica started with this environment would run with.
func showConfig(getenv func(string) string, w io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range config.Settings() {
		from := "default"
		if strings.TrimSpace(getenv(s.Name)) != "" {
			from = "set"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Value(cfg), from)
	}
	tw.Flush()
	_, err = io.WriteString(w, b.String())
	return err
}
