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

      # Yields the path of the dump name is on this machine, and how to call it: a file as it is;
      # a key or latest (the newest whose key begins with prefix) downloaded into a temporary
      # folder, removed after.
      def with_local_dump(name, prefix = "")
        return yield(name, name) if File.file?(name)

        store = configured_store
        store, key = name == "latest" ? [store, store.latest(prefix).key] : store.locate(name)
        Dir.mktmpdir("heapcapture-", HeapCapture.config.tmpdir) do |dir|
          path = File.join(dir, File.basename(key))
          store.download(key, path)
          yield path, store.url(key)
        end
      end

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
