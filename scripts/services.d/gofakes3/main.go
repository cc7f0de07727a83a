// The S3-compatible server of `scripts/services up s3`: gofakes3 (MIT,
// github.com/johannesboyne/gofakes3 v1.2.0, pinned in go.mod/go.sum) on
// loopback, objects in memory, with the bucket made at start. For the file
// tests and local runs only: it keeps nothing across a restart and does not
// check request signatures (any credentials are accepted).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18333", "address to listen on")
	bucket := flag.String("bucket", "chat-files", "bucket to create at start")
	flag.Parse()
	backend := s3mem.New()
	if err := backend.CreateBucket(*bucket); err != nil {
		log.Fatal(err)
	}
	faker := gofakes3.New(backend)
	log.Printf("gofakes3 on %s, bucket %s", *addr, *bucket)
	log.Fatal(http.ListenAndServe(*addr, faker.Server()))
}
