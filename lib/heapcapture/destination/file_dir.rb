# frozen_string_literal: true

require "fileutils"
require "find"

module HeapCapture
  module Destination
    # file:///dir: a capture's tempfile is linked (same filesystem) or copied into dir under its
    # key, 0600, never over an existing file; every file below dir is an entry, its key the path
    # relative to dir.
    class FileDir
      include Listing

      attr_reader :dir

      def initialize(uri)
        @dir = URI.decode_www_form_component(uri.path.to_s)
        if uri.host.to_s.empty? && @dir.start_with?("/")
          # file:///dir/ as the s3:// form is written: keys are relative to "/dir" ("/dir//x" was none)
          @dir = File.expand_path(@dir)
          return
        end

        raise ConfigurationError, "destination #{uri} must be file:///absolute/dir (three slashes; " \
                                  "no host)"
      end

      def prefix = ""
      def url(key = "") = "file://#{File.join(@dir, key)}"

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

      # Copies the dump to path (created 0600, never over a file); returns the bytes written.
      def download(key, path)
        source = path_of(key)
        File.open(path, File::WRONLY | File::CREAT | File::EXCL, 0o600) { |out| IO.copy_stream(source, out) }
      rescue Errno::ENOENT
        raise Error, "no dump #{url(key)}; see heapcapture list" unless File.exist?(source.to_s)

        raise
      end

      # Removes the dump; one already gone is not an error (as in S3).
      def delete(key)
        File.unlink(path_of(key))
        nil
      rescue Errno::ENOENT
        nil
      rescue SystemCallError => e
        raise Error, "deleting #{url(key)}: #{e.message}; check the destination (HEAPCAPTURE_DESTINATION)"
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
