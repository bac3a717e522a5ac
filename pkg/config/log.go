package config

import "log/slog"

// LogValue logs every setting of the table, secrets masked: the URLs'
// passwords and credential parameters (pkg/redact), and the admin token.
func (c Config) LogValue() slog.Value {
	settings := Settings()
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.Attr{Key: s.logKey, Value: s.log(c)}
	}
	return slog.GroupValue(attrs...)
}
