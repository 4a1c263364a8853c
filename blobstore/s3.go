package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Config names an S3-compatible bucket. Credentials come from the usual
// AWS sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles),
// which cmd/ passes through as the SDK reads them.
type S3Config struct {
	Bucket string
	// Endpoint is an S3-compatible service's URL; empty means AWS.
	Endpoint string
	Region   string
	// PathStyle addresses the bucket in the path (most S3-compatible services need it).
	PathStyle bool
	// TempDir holds an upload while its hash and size are checked.
	TempDir string
}

// S3 stores results in an S3-compatible bucket and hands out presigned
// download links, which S3 itself refuses once expired or altered.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	cfg     S3Config
}

// OpenS3 returns a store on the bucket; it fails when the AWS configuration
// cannot be loaded.
func OpenS3(ctx context.Context, c S3Config) (*S3, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.Region))
	if err != nil {
		return nil, fmt.Errorf("blobstore: AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
	})
	return &S3{client: client, presign: s3.NewPresignClient(client), cfg: c}, nil
}

// Put stores r as the object name: it is first spooled to a temporary file
// so its size limit and SHA-256 are checked before anything reaches the
// bucket; the object then appears whole or not at all. Errors as Local.Put.
func (b *S3) Put(name string, r io.Reader, maxBytes int64, wantSHA256 string) (string, int64, error) {
	if !validName(name) {
		return "", 0, fmt.Errorf("blobstore: bad name %q", name)
	}
	tmp, err := os.CreateTemp(b.cfg.TempDir, "upload-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, maxBytes+1))
	switch {
	case err != nil:
		return "", 0, fmt.Errorf("spool blob: %w", err)
	case n > maxBytes:
		return "", 0, ErrTooLarge
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA256 != "" && sum != wantSHA256 {
		return "", 0, ErrHashMismatch
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	_, err = b.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(b.cfg.Bucket), Key: aws.String(name), Body: tmp, ContentLength: aws.Int64(n),
		Metadata: map[string]string{"sha256": sum},
	})
	if err != nil {
		return "", 0, fmt.Errorf("put %s: %w", name, err)
	}
	return sum, n, nil
}

// Delete removes the object name; S3 answers a missing one as deleted.
func (b *S3) Delete(ctx context.Context, name string) error {
	if !validName(name) {
		return fmt.Errorf("blobstore: bad name %q", name)
	}
	if _, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(name)}); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// URL returns a presigned GET link to name, valid until expires.
func (b *S3) URL(ctx context.Context, name, _ string, expires time.Time) (string, error) {
	req, err := b.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(name)},
		s3.WithPresignExpires(time.Until(expires)))
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", name, err)
	}
	return req.URL, nil
}
