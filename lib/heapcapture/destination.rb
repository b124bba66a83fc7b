# frozen_string_literal: true

require "uri"

module HeapCapture
  # Where dumps are kept: `file:///dir` (a local directory, FileDir) or `s3://bucket/prefix/`
  # (S3Bucket). One object per store does all of it: a capture stores into it (store,
  # store_growing), the CLI lists, downloads and deletes from it. Destination.for(config) parses the
  # setting and raises ConfigurationError for anything it cannot use, before any dump is made.
  module Destination
    # Dumps are the objects whose key ends in .ndjson or .ndjson.gz, .age after it when encrypted.
    DUMP = /\.ndjson(\.gz)?(\.age)?\z/
    Entry = Struct.new(:key, :size, :time)

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

    # Stores text (what a capture keeps beside its dump: its summary, its report page) as key at
    # destination, through a 0600 file in tmpdir (its name ending in suffix) removed after; with
    # encrypt_to (age recipients), encrypted to them before it is written. => the stored location.
    def store_text(text, destination, key, tmpdir, suffix, encrypt_to: nil)
      text = Age.encrypt(text, encrypt_to) if encrypt_to
      path = Util.tempfile_path(tmpdir, suffix + (encrypt_to ? Age::SUFFIX : ""))
      File.open(path, File::WRONLY | File::CREAT | File::EXCL, 0o600) { |f| f.write(text) }
      destination.store(path, key)["location"]
    ensure
      File.unlink(path) if path && File.exist?(path)
    end

    def parse(url)
      URI.parse(url.to_s)
    rescue URI::InvalidURIError => e
      raise ConfigurationError, "destination #{url.inspect} is not a URL (#{e.message}); use " \
                                "s3://bucket/prefix/ or file:///dir"
    end

    # What both stores read back the same way, from their `entries`.
    module Listing
      # Dumps under the store's prefix + prefix, oldest first (the newest is printed last).
      def dumps(prefix = "")
        entries(self.prefix + prefix.to_s).select { |e| e.key.match?(DUMP) }.sort_by { |e| [e.time, e.key] }
      end

      def latest(prefix = "")
        dumps(prefix).last or raise Error, "no dumps in #{url(self.prefix + prefix.to_s)}; capture one " \
                                            "first (heapcapture signal --wait 120)"
      end
    end
  end
end

# The two stores, after Listing and Entry, which they use.
require_relative "destination/file_dir"
require_relative "destination/s3_bucket"
