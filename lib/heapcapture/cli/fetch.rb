# frozen_string_literal: true

require "zlib"
require "tmpdir"
require "fileutils"
require "pathname"

module HeapCapture
  class CLI
    # heapcapture fetch KEY|latest [-o FILE] [--raw] [--force] [--prefix P]
    class Fetch < BaseCommand
      CHUNK = 1024 * 1024
      # How the stored bytes become the file written: decompressed (gunzip), decrypted (identity:
      # an age identity file's text, for an .age key).
      Reading = Struct.new(:gunzip, :identity) do
        def as_stored? = !gunzip && !identity
      end

      def run(argv)
        options = { output: nil, raw: false, force: false, prefix: "" }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture fetch KEY|latest [options]\n\n" \
                     "Downloads one stored heap dump (a key as heapcapture list prints it, a location as\n" \
                     "heapcapture signal --wait prints it, s3://bucket/key of any bucket the credentials\n" \
                     "reach, or latest: the newest) and decompresses it; an age-encrypted one (.age) is\n" \
                     "decrypted as it is read, with HEAPCAPTURE_IDENTITY (an age identity file).\n" \
                     "Never overwrites a file unless --force.\n\n"
          o.on("-o", "--output FILE", "write to FILE, into FILE if it is a directory (DIR/ is created",
               "when missing), or to stdout if -", "(default: the key's basename, without .gz, in the current directory)") do |v|
            options[:output] = v
          end
          o.on("--raw", "do not decompress: the .gz as stored (an .age dump is still decrypted)") do
            options[:raw] = true
          end
          o.on("--force", "overwrite FILE if it exists") { options[:force] = true }
          o.on("--prefix P", "with latest: the newest dump whose key begins with P") { |v| options[:prefix] = v }
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::MissingArgument, "KEY (or latest)" if args.empty?
        raise OptionParser::NeedlessArgument, args.drop(1).join(" ") if args.size > 1
        raise OptionParser::InvalidArgument, "an empty KEY" if args.first.strip.empty?

        fetch(args.first, **options)
      end

      private

      def fetch(name, output:, raw:, force:, prefix:)
        store = configured_store
        store, key = name == "latest" ? [store, store.latest(prefix).key] : store.locate(name)
        identity = Age.identity!(store.url(key)) if key.end_with?(Age::SUFFIX) # before the download
        plain_key = key.delete_suffix(Age::SUFFIX)
        reading = Reading.new(!raw && plain_key.end_with?(".gz"), identity)
        basename = reading.gunzip ? File.basename(plain_key, ".gz") : File.basename(plain_key)
        return to_stdout(store, key, reading) if output == "-"

        target = target_path(output, basename)
        refuse_overwrite(target) if !force && File.exist?(target)
        stored, written = to_file(store, key, target, reading, force)
        @out.puts "fetched #{store.url(key)} to #{target} (#{Size.both(written)}#{stored_note(stored, reading)})"
        EXIT_OK
      end

      # "; 1.2 MiB stored" when what was written is not what is stored
      def stored_note(stored, reading)
        return "" if reading.as_stored?

        "; #{Size.human(stored)} stored#{reading.identity ? ', age-encrypted' : ''}"
      end

      # A trailing slash means a directory: it is created when missing.
      def target_path(output, basename)
        return File.expand_path(basename) if output.nil?

        make_directory(output) if output.end_with?("/") && !File.directory?(output)
        File.directory?(output) ? File.expand_path(basename, output) : File.expand_path(output)
      end

      def make_directory(dir)
        FileUtils.mkdir_p(dir)
      rescue Errno::EEXIST, Errno::ENOTDIR
        in_the_way = Pathname(dir).ascend.find { |path| File.exist?(path) && !File.directory?(path) }
        raise Error, "creating the directory #{dir}: #{in_the_way || 'a part of it'} exists and is not a directory"
      rescue SystemCallError => e
        raise Error, "creating the directory #{dir}: #{e.message}"
      end

      # Downloaded beside the target, decompressed into a second file there, then moved into
      # place: a partial dump never appears under the target's name.
      def to_file(store, key, target, reading, force)
        download = hidden_beside(target, "download")
        stored = store.download(key, download)
        return [stored, place(download, target, force)] if reading.as_stored?

        partial = hidden_beside(target, "partial")
        File.open(partial, File::WRONLY | File::CREAT | File::EXCL, 0o600) do |out|
          plain_copy(store, key, download, out, reading)
        end
        [stored, place(partial, target, force)]
      rescue SystemCallError, IOError => e
        raise Error, "writing #{target}: #{e.message}; check the directory exists, is writable and has room"
      ensure
        [download, partial].each { |path| File.unlink(path) if path && File.exist?(path) }
      end

      # -o -: the dump goes to stdout (for a pipe), what happened to stderr.
      def to_stdout(store, key, reading)
        Dir.mktmpdir("heapcapture-fetch-", HeapCapture.config.tmpdir) do |dir|
          download = File.join(dir, "download")
          stored = store.download(key, download)
          written = reading.as_stored? ? IO.copy_stream(download, @out) : plain_copy(store, key, download, @out, reading)
          @out.flush
          @err.puts "fetched #{store.url(key)} to stdout (#{Size.both(written)}#{stored_note(stored, reading)})"
        end
        EXIT_OK
      rescue Errno::EPIPE
        EXIT_FAILED
      end

      def hidden_beside(target, what)
        File.join(File.dirname(target), ".#{File.basename(target)}.#{Process.pid}.#{what}")
      end

      # The downloaded bytes at path into out, as reading says: an age file decrypted as it is read
      # (Dump.read_back: no plaintext is written but out's), decompressed when gunzip. Returns the
      # bytes written.
      def plain_copy(store, key, path, out, reading)
        return gunzip_file(store, key, path, out) unless reading.identity

        Dump.read_back(path, reading.identity, reading.gunzip) { |bytes| out.write(bytes) }
      rescue DumpError => e
        raise Error, Util.unprefixed(e.message).gsub(path, store.url(key))
      end

      # Decompresses in chunks, never the whole dump in memory; every gzip member in turn, as
      # gunzip does. Returns the bytes written.
      def gunzip_file(store, key, path, out)
        written = 0
        buffer = String.new(capacity: CHUNK)
        File.open(path, "rb") do |io|
          loop do
            gz = Zlib::GzipReader.new(io)
            written += out.write(buffer) while read_chunk(gz, buffer)
            unused = gz.unused
            gz.finish
            io.seek(-unused.bytesize, IO::SEEK_CUR) if unused
            break if io.eof?
          end
        end
        written
      rescue Zlib::Error => e
        raise Error, "#{store.url(key)} is not a whole gzip file (#{e.message}); fetch it with --raw " \
                     "to keep the bytes as stored"
      end

      def read_chunk(gz, buffer)
        gz.readpartial(CHUNK, buffer)
      rescue EOFError
        nil
      end

      # Hard-linked into place so that an existing file is never replaced, unless force.
      def place(source, target, force)
        size = File.size(source)
        if force
          File.rename(source, target)
        else
          link(source, target)
        end
        size
      end

      def link(source, target)
        File.link(source, target)
      rescue Errno::EEXIST
        refuse_overwrite(target)
      rescue Errno::EPERM, Errno::ENOTSUP, Errno::EXDEV
        refuse_overwrite(target) if File.exist?(target)
        File.rename(source, target) # a filesystem without hard links: checked just before
      end

      def refuse_overwrite(target)
        raise Error, "#{target} exists; it was not overwritten (use --force, or -o another file)"
      end
    end

    register "fetch", Fetch, "download a stored heap dump (latest or a key) and decompress it"
  end
end
