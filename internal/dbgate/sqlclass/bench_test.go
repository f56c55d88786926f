//go:build cgo

package sqlclass

import "testing"

// typicalStatements are the statements the speed target is set for.
var typicalStatements = []struct{ name, sql string }{
	{"pgbench-select", "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"},
	{"tpcb-update", "UPDATE pgbench_accounts SET abalance = abalance + -2477 WHERE aid = 48213;"},
	{"join-3-tables", "SELECT c.name, o.id, sum(i.price * i.qty) FROM customers c JOIN orders o ON o.customer_id = c.id " +
		"JOIN order_items i ON i.order_id = o.id WHERE c.id = 42 GROUP BY c.name, o.id ORDER BY o.id LIMIT 20"},
}

// BenchmarkClassify is a cold parse: every call parses, fingerprints and
// normalizes.
func BenchmarkClassify(b *testing.B) {
	for _, s := range typicalStatements {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Classify(s.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClassifyCached is a repeated statement through the cache, with
// the labels checked, as the gateway does per statement.
func BenchmarkClassifyCached(b *testing.B) {
	labels := map[string][]string{"pii": {"customers.ssn", "customers.email"}, "money": {"pgbench_accounts.abalance"}}
	for _, s := range typicalStatements {
		b.Run(s.name, func(b *testing.B) {
			c := NewClassifier(CacheOptions{})
			if _, err := c.Classify(s.sql); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				facts, err := c.Classify(s.sql)
				if err != nil {
					b.Fatal(err)
				}
				_ = Label(facts, labels)
			}
		})
	}
}

// BenchmarkClassifyCachedParallel is the cached path from many sessions
// at once, contending for the cache's lock.
func BenchmarkClassifyCachedParallel(b *testing.B) {
	c := NewClassifier(CacheOptions{})
	for _, s := range typicalStatements {
		c.Classify(s.sql)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Classify(typicalStatements[i%len(typicalStatements)].sql); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
