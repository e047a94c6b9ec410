package oteldiag_test

import (
	"context"
	"fmt"
	"runtime"

	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lockdiag/lockdiag/locks"
	"github.com/lockdiag/lockdiag/oteldiag"
)

// Register a Producer with the reader of an OpenTelemetry SDK MeterProvider;
// a ManualReader here, a PeriodicReader with an exporter in a service.
func Example() {
	reader := metric.NewManualReader(metric.WithProducer(oteldiag.NewProducer()))
	provider := metric.NewMeterProvider(metric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	var mu locks.Mutex
	mu.SetName("inventory_shard_127")
	mu.Lock()
	mu.Unlock()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.ExponentialHistogram[float64]).DataPoints {
				if id, _ := dp.Attributes.Value(locks.AttrID); id.AsString() == "inventory_shard_127" {
					typ, _ := dp.Attributes.Value(locks.AttrType)
					fmt.Printf("%s{lock.type=%s, lock.id=%s} unit %s\n", m.Name, typ.AsString(), id.AsString(), m.Unit)
					break // one lock of that name (an earlier one may not be collected yet)
				}
			}
		}
	}
	runtime.KeepAlive(&mu)
	// Output:
	// lock.wait.duration{lock.type=mutex, lock.id=inventory_shard_127} unit s
	// lock.held.duration{lock.type=mutex, lock.id=inventory_shard_127} unit s
}
