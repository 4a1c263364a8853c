package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3ReaderConfig configures an S3Reader. Credentials come from the usual
// AWS sources of the process reading (a compute node's own).
type S3ReaderConfig struct {
	// Endpoint is an S3-compatible service's URL; empty means AWS.
	Endpoint string
	// Region is the buckets' region; empty means the AWS configuration's,
	// else us-east-1.
	Region string
	// PathStyle addresses the bucket in the path.
	PathStyle bool
	// NoInstanceMetadata skips the EC2 instance metadata service when
	// looking for credentials, so a machine without any fails at once
	// instead of after the service's timeouts (the dev node).
	NoInstanceMetadata bool
}

// S3Reader reads objects of any bucket it is allowed to: job inputs
// named s3://bucket/key.
type S3Reader struct {
	client *s3.Client
}

// OpenS3Reader returns a reader; it fails when the AWS configuration
// cannot be loaded.
func OpenS3Reader(ctx context.Context, c S3ReaderConfig) (*S3Reader, error) {
	opts := []func(*config.LoadOptions) error{}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.NoInstanceMetadata {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("blobstore: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
	})
	return &S3Reader{client: client}, nil
}

// Get opens the object key of bucket and returns its content and size (-1
// when the service does not say). It returns ErrNotFound for a missing
// bucket or object, and the service's error otherwise.
func (r *S3Reader) Get(ctx context.Context, bucket, key string) (io.ReadCloser, int64, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var noKey *types.NoSuchKey
		var noBucket *types.NoSuchBucket
		var apiErr smithy.APIError
		var httpErr interface{ HTTPStatusCode() int }
		switch {
		case errors.As(err, &noKey), errors.As(err, &noBucket):
			return nil, 0, fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrNotFound)
		case errors.As(err, &httpErr) && httpErr.HTTPStatusCode() == http.StatusNotFound:
			return nil, 0, fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrNotFound)
		case errors.As(err, &apiErr):
			return nil, 0, fmt.Errorf("s3://%s/%s: %s: %s", bucket, key, apiErr.ErrorCode(), apiErr.ErrorMessage())
		}
		return nil, 0, fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return out.Body, size, nil
}
