package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// TestResultsInS3: with results configured in an S3-compatible bucket (an
// in-process S3 protocol server, gofakes3 — it does not check signatures,
// so refusing altered or expired links is left to the real service), 1. a
// node's upload lands in the bucket; 2. the result link is a presigned S3
// URL that downloads the exact bytes without a token.
func TestResultsInS3(t *testing.T) {
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer fake.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(fake.URL); o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("results")}); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *Config) {
		c.S3Bucket, c.S3Endpoint, c.S3Region, c.S3PathStyle = "results", fake.URL, "us-east-1", true
	})
	tok := s.register(t, "s3@example.com").AccessToken
	s.call(t, "POST", "/api/v1/credits/checkout", tok, map[string]string{"package_id": "credits_100"}, nil)
	node := s.enrollNode(t, s.admin(t), 2)
	var sub submitted
	s.call(t, "POST", "/api/v1/jobs/dispatch", tok, map[string]any{"job_type": "render", "payload_ref": "s3://b/k"}, &sub)
	s.call(t, "POST", "/api/v1/nodes/jobs/"+sub.JobID+"/started", node, nil, nil)
	result := []byte("frame from S3\n")
	sum := sha256.Sum256(result)
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/nodes/jobs/"+sub.JobID+"/result", bytes.NewReader(result))
	req.Header.Set("Authorization", "Bearer "+node)
	req.Header.Set("X-Result-SHA256", hex.EncodeToString(sum[:]))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("step 1: upload: %v %v", err, resp.Status)
	}
	objects, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("results")})
	if err != nil || len(objects.Contents) != 1 || !strings.HasPrefix(*objects.Contents[0].Key, sub.JobID) {
		t.Fatalf("step 1: bucket holds %+v, %v; want the job's result", objects, err)
	}
	var link struct {
		DownloadURL string `json:"download_url"`
		ExpiresIn   int    `json:"expires_in"`
	}
	s.call(t, "GET", "/api/v1/jobs/"+sub.JobID+"/result", tok, nil, &link)
	if !strings.HasPrefix(link.DownloadURL, fake.URL) || !strings.Contains(link.DownloadURL, "X-Amz-Signature=") || link.ExpiresIn != 3600 {
		t.Fatalf("step 2: link %+v, want a presigned URL of the bucket", link)
	}
	if got := download(t, link.DownloadURL); !bytes.Equal(got, result) {
		t.Fatalf("step 2: downloaded %q, want %q", got, result)
	}
}
