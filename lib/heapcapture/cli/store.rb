# frozen_string_literal: true

require "find"

module HeapCapture
  class CLI
    # The configured store, as `list` and `fetch` see it: the destination captures go to
    # (Destination.for: HEAPCAPTURE_DESTINATION, else s3://$AWS_S3_BUCKET_NAME/, else the local
    # default), read back. Dumps are the objects whose key ends in .ndjson or .ndjson.gz.
    class Store
      DUMP = /\.ndjson(\.gz)?\z/.freeze
      Entry = Struct.new(:key, :size, :time)

      def self.configured(config = HeapCapture.config)
        destination = Destination.for(config)
        destination.is_a?(Destination::FileDir) ? FileStore.new(destination.dir) : S3Store.new(destination, config)
      end

      # Dumps under the store's prefix + prefix, oldest first (the newest is printed last).
      def dumps(prefix = "")
        entries(self.prefix + prefix.to_s).select { |e| e.key.match?(DUMP) }.sort_by { |e| [e.time, e.key] }
      end

      def latest(prefix = "")
        dumps(prefix).last or raise Error, "no dumps in #{url(self.prefix + prefix.to_s)}; capture one " \
                                            "first (heapcapture signal --wait 120)"
      end
    end

    # s3://bucket/prefix/ through HeapCapture::S3::Client.
    class S3Store < Store
      attr_reader :prefix

      def initialize(destination, config)
        super()
        @bucket = destination.bucket
        @prefix = destination.prefix
        @config = config
      end

      def url(key = prefix) = "s3://#{@bucket}/#{key}"

      # [store, key] for a key as list prints it, or a location a capture reported
      # (s3://bucket/key): a location in another bucket is read from that bucket.
      def locate(name)
        return [self, name] unless name.start_with?("s3://")

        bucket, key = name.delete_prefix("s3://").split("/", 2)
        raise Error, "#{name.inspect} names no object; use s3://bucket/key" if bucket.to_s.empty? || key.to_s.empty?
        return [self, key] if bucket == @bucket

        [S3Store.new(Destination.for(@config.dup.apply(destination: "s3://#{bucket}/")), @config), key]
      end

      def entries(prefix)
        client.list(prefix: prefix).map { |o| Entry.new(o["key"], o["size"], o["last_modified"] || Time.at(0)) }
      rescue UploadError => e
        raise explain(e, "listing #{url(prefix)}")
      end

      # Streams the object to path (0600); returns the bytes written.
      def download(key, path)
        client.download(key, to: path)
      rescue UploadError => e
        raise explain(e, "fetching #{url(key)}") unless e.status == 404 && e.code == "NoSuchKey"

        raise Error, "no dump #{url(key)} (S3 answered 404 NoSuchKey); see heapcapture list"
      end

      private

      def client
        @client ||= HeapCapture::S3::Client.from_config(@config, bucket: @bucket)
      end

      # S3's words, plus what to check when they point at the credentials.
      def explain(error, doing)
        return error unless error.respond_to?(:status) && error.status == 403

        UploadError.new("#{error.message}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (#{doing})",
                        code: error.code, status: error.status, request_id: error.request_id)
      end
    end

    # file:///dir: every file below dir, its key the path relative to dir.
    class FileStore < Store
      def initialize(dir)
        super()
        @dir = dir
      end

      def prefix = ""
      def url(key = "") = "file://#{File.join(@dir, key)}"

      # [self, key] for a key as list prints it, or the location a capture reported (a path in
      # dir, file:// or not). An s3:// location is refused: this store is a local folder.
      def locate(name)
        if name.start_with?("s3://")
          raise Error, "#{name} is in S3, but the destination is #{url}; set HEAPCAPTURE_DESTINATION " \
                       "(or AWS_S3_BUCKET_NAME) to its bucket to fetch it"
        end
        path = name.delete_prefix("file://")
        [self, path.start_with?("#{@dir}/") ? path.delete_prefix("#{@dir}/") : name]
      end

      def entries(prefix)
        return [] unless File.directory?(@dir)

        found = []
        Find.find(@dir) do |path|
          stat = File.lstat(path)
          next unless stat.file?

          key = path.delete_prefix("#{@dir}/")
          found << Entry.new(key, stat.size, stat.mtime) if key.start_with?(prefix)
        end
        found
      rescue SystemCallError => e
        raise Error, "listing #{url}: #{e.message}; check the destination (HEAPCAPTURE_DESTINATION)"
      end

      def download(key, path)
        source = path_of(key)
        File.open(path, File::WRONLY | File::CREAT | File::EXCL, 0o600) { |out| IO.copy_stream(source, out) }
      rescue Errno::ENOENT
        raise Error, "no dump #{url(key)}; see heapcapture list" unless File.exist?(source.to_s)

        raise
      end

      private

      # A key names a file inside dir, never outside it.
      def path_of(key)
        parts = key.split("/")
        raise Error, "#{key.inspect} is not a key in #{url}; use one that heapcapture list prints" \
          if key.start_with?("/") || parts.empty? || parts.any? { |p| p.empty? || p == "." || p == ".." }

        File.join(@dir, key)
      end
    end
  end
end
