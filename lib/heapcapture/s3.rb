# frozen_string_literal: true

require "time"

module HeapCapture
  module S3
    # An S3 client in C (ext/heapcapture/s3.c): streaming single PUTs, parallel multipart uploads,
    # retries with backoff, and every transfer run without the GVL so the application keeps running.
    # This half takes the keywords and defaults; the C half (rb_s3.c) does the work.
    #
    #   s3 = HeapCapture::S3::Client.from_config(bucket: "my-dumps")
    #   s3.upload("/tmp/heap.ndjson.gz", key: "dumps/heap.ndjson.gz")  # => {"key"=>..., "etag"=>..., ...}
    #
    # One client runs one operation at a time: give each thread its own.
    class Client
      attr_reader :bucket, :region, :endpoint, :part_size, :concurrency, :sse, :sse_kms_key_id

      # A client for bucket with the region, endpoint, credentials, part size, concurrency and
      # server-side encryption of a HeapCapture::Configuration (each has an environment default).
      def self.from_config(config = HeapCapture.config, bucket:, **options)
        new(bucket: bucket, region: config.region, endpoint: config.endpoint,
            access_key_id: config.access_key_id, secret_access_key: config.secret_access_key,
            session_token: config.session_token, part_size: config.part_size,
            concurrency: config.concurrency, sse: config.sse, sse_kms_key_id: config.sse_kms_key_id, **options)
      end

      # connect_timeout: seconds to open a connection. low_speed_time: seconds a transfer may stay
      # below 1 byte/s before it counts as stalled (and is retried). max_attempts: per request.
      # retry_base_delay: seconds before the first retry; doubles each time, with jitter.
      # ca_file / ca_path: the CA certificates that verify S3's TLS certificate.
      # sse: server-side encryption ("aws:kms" or "AES256"), asked for on every object stored, with
      # the KMS key sse_kms_key_id for "aws:kms" (nil: the bucket's default key).
      def initialize(bucket:, region:, access_key_id:, secret_access_key:, endpoint: nil, session_token: nil,
                     path_style: nil, part_size: HeapCapture.config.part_size,
                     concurrency: HeapCapture.config.concurrency, connect_timeout: 10, low_speed_time: 30,
                     max_attempts: 5, retry_base_delay: 0.2, ca_file: ENV["SSL_CERT_FILE"], ca_path: ENV["SSL_CERT_DIR"],
                     sse: nil, sse_kms_key_id: nil)
        @bucket = required_string(bucket, "bucket", "AWS_S3_BUCKET_NAME or HEAPCAPTURE_DESTINATION")
        @region = required_string(region, "region", "AWS_REGION")
        @endpoint = optional_string(endpoint)
        @part_size = Configuration.part_size!(part_size)
        @concurrency = Configuration.concurrency!(concurrency)
        @sse, @sse_kms_key_id = encryption(sse, sse_kms_key_id)
        _setup(
          bucket: @bucket, region: @region, endpoint: @endpoint, path_style: path_style.nil? ? nil : (path_style && true),
          access_key_id: required_string(access_key_id, "access_key_id", "AWS_ACCESS_KEY_ID"),
          secret_access_key: required_string(secret_access_key, "secret_access_key", "AWS_SECRET_ACCESS_KEY"),
          session_token: optional_string(session_token),
          part_size: @part_size, concurrency: @concurrency,
          connect_timeout_ms: milliseconds(connect_timeout, "connect_timeout"),
          low_speed_time_s: [milliseconds(low_speed_time, "low_speed_time") / 1000, 1].max,
          max_attempts: Configuration.max_attempts!(max_attempts),
          retry_base_ms: [milliseconds(retry_base_delay, "retry_base_delay"), 1].max,
          ca_file: optional_string(ca_file), ca_path: optional_string(ca_path),
          product: "heapcapture/#{VERSION}", # the User-Agent: "heapcapture/0.1.0 libcurl/7.88.1"
          sse: @sse, sse_kms_key_id: @sse_kms_key_id
        )
      end

      # Stores the file at path under key: one streamed PUT up to part_size bytes, a parallel
      # multipart upload above. Returns { "key", "etag", "bytes", "parts" }. Raises UploadError
      # (nothing left behind at S3) when the file cannot be read or S3 refuses it for good.
      def upload(path, key:, content_type: nil)
        path = path.respond_to?(:to_path) ? path.to_path : path
        uploaded(key, _upload(string(path, "path"), key_string(key), content_type_arg(content_type)))
      end

      # Stores the tempfile of a running Dump::Child under key while the child still writes it:
      # parts go up as they fill (a dump that ends within one part goes up as a single PUT).
      # size_hint: the bytes the dump may reach (sizes the parts to fit S3's 10,000). Returns what
      # #upload returns; raises UploadError with the dump's own failure when the child fails.
      def upload_growing(child, key:, size_hint:, content_type: nil)
        raise TypeError, Util.prefixed("size_hint must be a non-negative Integer, got #{size_hint.inspect}") \
          unless size_hint.is_a?(Integer) && size_hint >= 0

        uploaded(key, _upload_growing(child, key_string(key), content_type_arg(content_type), size_hint))
      end

      # Streams the object to the file `to` (written beside it under a temporary name, then
      # renamed). Returns the number of bytes written. Raises S3Error when S3 refuses (404
      # NoSuchKey for a key that is not there).
      def download(key, to:)
        to = to.respond_to?(:to_path) ? to.to_path : to
        _download(key_string(key), string(to, "to"))
      end

      # Every object whose key begins with prefix, in key order:
      # [{ "key" => String, "size" => Integer, "last_modified" => Time }, ...]. Raises S3Error.
      def list(prefix: "")
        _list(string(prefix.to_s, "prefix")).map do |key, size, last_modified|
          { "key" => key, "size" => size, "last_modified" => last_modified && Time.iso8601(last_modified) }
        end
      end

      # A URL that GETs the object without credentials for expires_in seconds (at most 7 days).
      def presigned_url(key, expires_in: 3600)
        raise ArgumentError, Util.prefixed("expires_in must be 1 to 604800 seconds, got #{expires_in.inspect}") \
          unless expires_in.is_a?(Integer) && expires_in.between?(1, 604_800)

        _presigned_url(key_string(key), expires_in, Time.now.to_i)
      end

      # Deletes the object (S3 answers success for a key that does not exist). Raises S3Error.
      def delete(key)
        _delete(key_string(key))
        nil
      end

      def inspect
        "#<#{self.class} #{base_url} region=#{region} part_size=#{part_size} concurrency=#{concurrency}" \
          "#{" sse=#{sse}" if sse}#{" sse_kms_key_id=#{sse_kms_key_id}" if sse_kms_key_id}>"
      end

      private

      def required_string(value, name, env)
        return value if value.is_a?(String) && !value.strip.empty?

        raise ConfigurationError, "S3 #{name} is missing: set #{env} or pass #{name}:" if value.nil? || value == ""

        raise ConfigurationError, "S3 #{name} must be a String, got #{value.class}"
      end

      def optional_string(value)
        return nil if value.nil? || (value.is_a?(String) && value.strip.empty?)
        raise ConfigurationError, "expected a String, got #{value.inspect}" unless value.is_a?(String)

        value
      end

      # [sse as S3 spells it or nil, the KMS key id or nil]: a key id goes with "aws:kms" only.
      def encryption(sse, key_id)
        sse = sse.nil? || sse.to_s.strip.empty? ? nil : Configuration.sse!(sse)
        unless key_id.nil? || key_id.is_a?(String)
          raise ConfigurationError, "sse_kms_key_id must be a String (a KMS key id, ARN or alias), got #{key_id.class}"
        end

        key_id = key_id&.strip
        return [sse, nil] if key_id.nil? || key_id.empty?
        return [sse, key_id] if sse == "aws:kms"

        raise ConfigurationError, "sse_kms_key_id (HEAPCAPTURE_SSE_KMS_KEY_ID) is the KMS key of sse aws:kms, and " \
                                  "sse is #{sse || 'not set'}: set sse to aws:kms (HEAPCAPTURE_SSE=aws:kms) or " \
                                  "leave the key id out"
      end

      def milliseconds(seconds, name)
        raise ConfigurationError, "S3 #{name} must be a positive number of seconds, got #{seconds.inspect}" \
          unless seconds.is_a?(Numeric) && seconds.positive?

        (seconds * 1000).ceil
      end

      def string(value, name)
        raise TypeError, Util.prefixed("#{name} must be a String, got #{value.class}") unless value.is_a?(String)

        value
      end

      def content_type_arg(content_type) = content_type.nil? ? nil : string(content_type, "content_type")

      # What both uploads return, from the binding's [etag, bytes, parts].
      def uploaded(key, (etag, bytes, parts)) = { "key" => key, "etag" => etag, "bytes" => bytes, "parts" => parts }

      def key_string(key)
        raise ArgumentError, Util.prefixed("an S3 key must be a non-empty String, got #{key.inspect}") \
          unless key.is_a?(String) && !key.empty?
        raise ArgumentError, Util.prefixed("an S3 key is at most 1024 bytes, got #{key.bytesize}") if key.bytesize > 1024

        key.encode(Encoding::UTF_8)
      end
    end
  end
end
