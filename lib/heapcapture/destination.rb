# frozen_string_literal: true

require "uri"
require "fileutils"

module HeapCapture
  # Where a finished dump goes: `file:///dir` (a local directory) or `s3://bucket/prefix/`.
  # Destination.for(config) parses the setting once per capture and raises ConfigurationError for
  # anything it cannot use, before any dump is made.
  module Destination
    module_function

    def for(config)
      url = config.destination || default_file_url(config)
      uri = parse(url)
      case uri.scheme
      when "file" then FileDir.new(uri)
      when "s3" then S3Bucket.new(uri, config)
      else
        raise ConfigurationError, "destination #{url.inspect} is neither s3://bucket/prefix/ nor " \
                                  "file:///dir; set HEAPCAPTURE_DESTINATION (or destination:)"
      end
    end

    # With no destination and no bucket configured, dumps stay on this machine; said once.
    def default_file_url(config)
      url = "file://#{File.join(File.expand_path(config.tmpdir), 'heapcapture')}"
      @default_logged ||= Log.info("no destination configured (no HEAPCAPTURE_DESTINATION, no AWS_S3_BUCKET_NAME): " \
                                   "dumps go to #{url}") || true
      url
    end

    def parse(url)
      URI.parse(url.to_s)
    rescue URI::InvalidURIError => e
      raise ConfigurationError, "destination #{url.inspect} is not a URL (#{e.message}); use " \
                                "s3://bucket/prefix/ or file:///dir"
    end

    # file:///dir: the tempfile is linked (same filesystem) or copied into dir under its key,
    # 0600, never over an existing file.
    class FileDir
      attr_reader :dir

      def initialize(uri)
        @dir = URI.decode_www_form_component(uri.path.to_s)
        unless uri.host.to_s.empty? && @dir.start_with?("/")
          raise ConfigurationError, "destination #{uri} must be file:///absolute/dir (three slashes; " \
                                    "no host)"
        end
      end

      def prefix = ""

      # A local copy is made once the dump is complete.
      def streams? = false

      # => { "location" => path }
      def store(path, key)
        FileUtils.mkdir_p(dir, mode: 0o700)
        target = File.join(dir, key)
        place(path, target)
        { "location" => target }
      rescue SystemCallError => e
        raise DumpError, "storing the dump in #{dir}: #{e.message}; check the destination " \
                         "(HEAPCAPTURE_DESTINATION) is a writable directory with room for it"
      end

      private

      def place(path, target)
        File.link(path, target)
      rescue Errno::EXDEV, Errno::EPERM, Errno::ENOTSUP
        copy(path, target)
      rescue Errno::EEXIST
        raise DumpError, "storing the dump: #{target} already exists; it was not overwritten"
      end

      # A partial copy never appears under the final name.
      def copy(path, target)
        partial = "#{target}.partial"
        File.open(partial, File::WRONLY | File::CREAT | File::EXCL, 0o600) do |out|
          IO.copy_stream(path, out)
          out.fsync
        end
        File.link(partial, target)
      ensure
        File.unlink(partial) if partial && File.exist?(partial)
      end
    end

    # s3://bucket/prefix/: uploaded with the S3 client, answered with a presigned GET URL.
    class S3Bucket
      attr_reader :bucket, :prefix

      def initialize(uri, config)
        @bucket = uri.host.to_s
        raise ConfigurationError, "destination #{uri} names no bucket; use s3://bucket/prefix/" if @bucket.empty?

        @prefix = uri.path.to_s.sub(%r{\A/}, "")
        @prefix += "/" unless @prefix.empty? || @prefix.end_with?("/")
        unless defined?(HeapCapture::S3::Client)
          raise ConfigurationError, "destination #{uri} needs the S3 client, which is not available " \
                                    "in this build; use file:///dir for now"
        end

        # Made now so that missing credentials are a ConfigurationError before any dump is made.
        @client = HeapCapture::S3::Client.from_config(config, bucket: bucket)
      end

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

      private

      def content_type(key) = key.end_with?(".gz") ? "application/gzip" : "application/x-ndjson"

      def stored(key) = { "location" => "s3://#{bucket}/#{key}", "url" => @client.presigned_url(key) }
    end
  end
end
