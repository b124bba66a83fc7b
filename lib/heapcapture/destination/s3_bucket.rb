# frozen_string_literal: true

module HeapCapture
  module Destination
    # s3://bucket/prefix/: uploaded with the S3 client (a fork-mode dump while it is written),
    # answered with a presigned GET URL; listed, downloaded and deleted with the same client.
    class S3Bucket
      include Listing

      attr_reader :bucket, :prefix

      def initialize(uri, config)
        @bucket = uri.host.to_s
        raise ConfigurationError, "destination #{uri} names no bucket; use s3://bucket/prefix/" if @bucket.empty?

        @prefix = uri.path.to_s.sub(%r{\A/}, "")
        @prefix += "/" unless @prefix.empty? || @prefix.end_with?("/")
        @config = config
        # Made now so that missing credentials are a ConfigurationError before any dump is made.
        @client = HeapCapture::S3::Client.from_config(config, bucket: bucket)
      end

      def url(key = prefix) = "s3://#{bucket}/#{key}"

      # The upload can follow a fork-mode dump while it is written.
      def streams? = true

      # => { "location" => "s3://bucket/key", "url" => presigned GET }
      def store(path, key)
        @client.upload(path, key: key, content_type: content_type(key))
        stored(key)
      end

      # The same for the tempfile a Dump::Child is still writing (size_hint: bytes it may reach).
      def store_growing(child, key, size_hint)
        @client.upload_growing(child, key: key, content_type: content_type(key), size_hint: size_hint)
        stored(key)
      end

      # [bucket, key] of a location a capture reported (s3://bucket/key), or Error saying why not.
      def self.split(location)
        bucket, key = location.delete_prefix("s3://").split("/", 2)
        raise Error, "#{location.inspect} names no object; use s3://bucket/key" if bucket.to_s.empty? || key.to_s.empty?

        [bucket, key]
      end

      # The store of bucket with config's credentials (ConfigurationError when it has none).
      def self.of_bucket(config, bucket) = Destination.for(config.dup.apply(destination: "s3://#{bucket}/"))

      # [store, key] for a key as list prints it, or a location a capture reported
      # (s3://bucket/key): a location in another bucket is read from that bucket.
      def locate(name)
        return [self, name] unless name.start_with?("s3://")

        bucket, key = self.class.split(name)
        [bucket == @bucket ? self : self.class.of_bucket(@config, bucket), key]
      end

      # A GET URL of key, presigned for an hour (what a capture's result gives as "url").
      def presigned_url(key) = @client.presigned_url(key)

      def entries(prefix)
        @client.list(prefix: prefix).map { |o| Entry.new(o["key"], o["size"], o["last_modified"] || Time.at(0)) }
      rescue S3Error => e
        raise explain(e, "listing #{url(prefix)}")
      end

      # Streams the object to path (0600); returns the bytes written.
      def download(key, path)
        @client.download(key, to: path)
      rescue S3Error => e
        raise explain(e, "fetching #{url(key)}") unless e.status == 404 && e.code == "NoSuchKey"

        raise Error, "no dump #{url(key)} (S3 answered 404 NoSuchKey); see heapcapture list"
      end

      def delete(key)
        @client.delete(key)
        nil
      rescue S3Error => e
        raise explain(e, "deleting #{url(key)}")
      end

      private

      def content_type(key)
        return "application/octet-stream" if key.end_with?(Age::SUFFIX) # an age file: nothing says more
        return "application/json" if key.end_with?(".json")

        key.end_with?(".gz") ? "application/gzip" : "application/x-ndjson"
      end

      def stored(key) = { "location" => url(key), "url" => presigned_url(key) }

      # S3's words, plus what to check when they point at the credentials.
      def explain(error, doing)
        return error unless error.status == 403

        error.class.new("#{error.message}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (#{doing})",
                        code: error.code, status: error.status, request_id: error.request_id)
      end
    end
  end
end
