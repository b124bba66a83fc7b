# frozen_string_literal: true

require "tmpdir"

module HeapCapture
  class CLI
    # What every command shares: where it writes, and its --help.
    class BaseCommand
      def initialize(out:, err:)
        @out = out
        @err = err
      end

      private

      # The store captures go to, read back. With no destination configured that is a folder on
      # this machine: said on err, since the dumps of a remote app are not there.
      def configured_store
        config = HeapCapture.config
        store = Destination.for(config)
        unless config.destination
          @err.puts Util.prefixed("no destination configured (no HEAPCAPTURE_DESTINATION, no AWS_S3_BUCKET_NAME): " \
                                 "using the local folder #{store.url}, where captures of processes on this machine go")
        end
        store
      end

      # Yields the path of the dump name is on this machine, how to call it, and the identity it
      # is read with (an age identity file's text, or nil for a dump that is not encrypted): a file
      # as it is; a key or latest (the newest whose key begins with prefix) downloaded into a
      # temporary folder, removed after. An encrypted dump without HEAPCAPTURE_IDENTITY is an Error
      # before anything is downloaded.
      def with_local_dump(name, prefix = "")
        return yield(name, name, identity_for(name, name)) if File.file?(name)

        store = configured_store
        store, key = name == "latest" ? [store, store.latest(prefix).key] : store.locate(name)
        identity = Age.identity!(store.url(key)) if key.end_with?(Age::SUFFIX)
        Dir.mktmpdir("heapcapture-", HeapCapture.config.tmpdir) do |dir|
          path = File.join(dir, File.basename(key))
          store.download(key, path)
          as_downloaded(path => store.url(key)) { yield path, store.url(key), identity || identity_for(path, store.url(key)) }
        end
      end

      # Runs the block; a DumpError that names a downloaded file (labels: its path => what it was
      # downloaded from) names where it came from instead.
      def as_downloaded(labels)
        yield
      rescue DumpError => e
        raise DumpError, labels.reduce(Util.unprefixed(e.message)) { |message, (path, label)| message.gsub(path, label) }
      end

      # The identity (HEAPCAPTURE_IDENTITY's file) the file at path needs when it is age-encrypted
      # (label: how to call it), else nil.
      def identity_for(path, label) = Age.encrypted?(path) ? Age.identity!(label) : nil

      # Parses argv with the command's parser plus -h/--help; returns the remaining arguments, or
      # nil when help was asked for (and printed): the command then exits 0.
      def parse(parser, argv)
        parser.on("-h", "--help", "show this help") do
          @out.puts parser
          throw :help_shown
        end
        catch(:help_shown) { return parser.parse(argv) }
        nil
      end
    end
  end
end
