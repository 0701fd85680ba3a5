package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ptsync/ptsync/internal/config"
)

// newLogger builds the zap logger of log.level and log.format, writing to w
// (stderr: stdout carries plans and reports).
func newLogger(cfg config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch cfg.Format {
	case "json", "":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log.format: %q is not json or console", cfg.Format)
	}
	// Sources, the PagerTree client and apply workers log from several
	// goroutines at once; Lock keeps their lines whole and w race-free.
	return zap.New(escapingCore{zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)}), nil
}
