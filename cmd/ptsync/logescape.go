package main

import (
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ptsync/ptsync/sync"
)

// escapingCore escapes control characters in every entry's message and in
// its string, string-list and error fields (sync.EscapeControls). Names and
// emails come from the directory and PagerTree: zap escapes newlines and
// ESC, but leaves C1 controls and bidi overrides raw, in the console format
// as in JSON, and a terminal acts on them.
type escapingCore struct{ zapcore.Core }

func (c escapingCore) With(fields []zapcore.Field) zapcore.Core {
	return escapingCore{c.Core.With(escapeFields(fields))}
}

func (c escapingCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c escapingCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	ent.Message = sync.EscapeControls(ent.Message)
	return c.Core.Write(ent, escapeFields(fields))
}

// escapeFields returns fields with each one that needs it escaped; the
// caller's slice is never changed.
func escapeFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		escaped, changed := escapeField(f)
		if !changed {
			continue
		}
		if out == nil {
			out = slices.Clone(fields)
		}
		out[i] = escaped
	}
	if out == nil {
		return fields
	}
	return out
}

// escapeField is f with its text escaped, and whether that changed it.
func escapeField(f zapcore.Field) (zapcore.Field, bool) {
	switch f.Type {
	case zapcore.StringType:
		s := sync.EscapeControls(f.String)
		changed := s != f.String
		f.String = s
		return f, changed
	case zapcore.ErrorType:
		if err, ok := f.Interface.(error); ok {
			if msg := err.Error(); sync.HasControl(msg) {
				return zap.String(f.Key, sync.EscapeControls(msg)), true
			}
		}
	case zapcore.ArrayMarshalerType:
		f.Interface = escapingArray{f.Interface.(zapcore.ArrayMarshaler)}
		return f, true
	}
	return f, false
}

// escapingArray escapes the strings of a list field (zap.Strings).
type escapingArray struct{ zapcore.ArrayMarshaler }

func (a escapingArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	return a.ArrayMarshaler.MarshalLogArray(escapingArrayEncoder{enc})
}

type escapingArrayEncoder struct{ zapcore.ArrayEncoder }

func (e escapingArrayEncoder) AppendString(s string) {
	e.ArrayEncoder.AppendString(sync.EscapeControls(s))
}
