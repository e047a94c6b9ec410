// Command wire serves lockdiag without the blank import: the README's
// "wire it yourself" snippet, whole (a test keeps the two the same). It
// runs until Ctrl-C.
package main

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
	"github.com/lockdiag/lockdiag/promdiag"
)

func main() {
	m, err := diag.New(diag.Config{Rules: "mutex_wait > 2 for 500ms", Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()

	mux := http.NewServeMux()
	opts := httpdiag.Options{Token: os.Getenv("DEBUG_TOKEN"), Metrics: promdiag.Handler(m)}
	if err := httpdiag.Register(mux, m, opts); err != nil {
		log.Fatal(err)
	}
	// Or put lockdiag's metrics on the registry the service already has:
	reg := prometheus.NewRegistry()
	reg.MustRegister(promdiag.NewCollector(m))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	srv := &http.Server{Addr: "127.0.0.1:6062", Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Printf("lockdiag at http://%s/debug/locks until Ctrl-C", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Print(err)
	}
}
