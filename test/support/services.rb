# frozen_string_literal: true

# The real services the tests run against, started once per test run on loopback and stopped at
# the end: a throwaway PostgreSQL cluster and the S3-compatible server (and redis-server for the
# Sidekiq tests, when asked for). Their addresses reach the
# tests (and any process a test starts) through the environment variables users set.
# A service that cannot start is a failure with its log, never a skip.
require "json"
require "socket"
require "tmpdir"
require "fileutils"
require "timeout"
require "etc"
require "io/wait"

module HCTest
  module Services
    ROOT = File.expand_path("../..", __dir__)
    BUCKET = "heapcapture-test"
    OTHER_BUCKET = "heapcapture-other" # a second bucket, for locations outside the destination's

    class Error < StandardError; end

    class << self
      # Starts both services (once) and exports their environment. Idempotent.
      def start!
        postgres
        s3
        self
      end

      def postgres
        @postgres ||= Postgres.new(workdir).tap(&:start)
      end

      def s3
        @s3 ||= start_s3
      end

      # The gateway is given a port found free, which another process may take before the gateway
      # binds it (a Ruby 3.4 CI leg saw "Address already in use" once): a start that fails is tried
      # once more, with new ports, in a directory of its own (the failed one's logs stay).
      def start_s3
        attempt = 1
        begin
          S3Server.new(workdir).tap(&:start)
        rescue Error => e
          raise if attempt >= 2

          warn "heapcapture tests: the S3 server did not start (#{e.message.lines.first.strip}); starting it again"
          attempt += 1
          retry
        end
      end

      # A throwaway redis-server for the Sidekiq tests (started on first use, exports REDIS_URL).
      def redis
        @redis ||= Redis.new(workdir).tap(&:start)
      end

      # One directory per test run for every service's data and logs.
      def workdir
        if ENV["HEAPCAPTURE_UNIT_TESTS"]
          raise Error, "a test in `rake test:unit` started a service: move its file out of test/unit/ " \
                       "(the Rakefile finds the tiers by folder), it belongs to test:services"
        end

        # Traversable by the postgres user, which runs the cluster when we are root.
        @workdir ||= Dir.mktmpdir("heapcapture-test-").tap { |dir| File.chmod(0o711, dir) }
      end

      # Stops what was started; keeps the logs (and says where) when a test failed.
      def stop!(keep_logs: false)
        [@postgres, @s3, @redis].compact.each(&:stop)
        return unless @workdir

        if keep_logs
          warn "heapcapture tests: a test failed; service logs kept in #{@workdir}"
        else
          FileUtils.rm_rf(@workdir)
        end
      end

      def free_port
        server = TCPServer.new("127.0.0.1", 0)
        server.addr[1]
      ensure
        server&.close
      end

      # Waits for a block to turn truthy, in bounded steps.
      def wait_until(what, timeout: 30, interval: 0.05)
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        loop do
          result = yield
          return result if result
          raise Error, "timed out after #{timeout}s waiting for #{what}" \
            if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

          sleep interval
        end
      end

      def root?
        Process.uid.zero?
      end

      # TERM to the process group led by pid (a server and its workers), KILL after timeout seconds
      # or to whatever of the group is left; reaps the leader.
      def stop_group(pid, timeout: 15)
        Process.kill("TERM", -pid)
        Timeout.timeout(timeout) { Process.waitpid(pid) }
      rescue Timeout::Error
        Process.kill("KILL", -pid)
        Process.waitpid(pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      ensure
        begin
          Process.kill("KILL", -pid) # a worker left behind
        rescue Errno::ESRCH, Errno::EPERM
          nil
        end
      end

      # A log file's text as UTF-8, whatever the locale (servers write UTF-8, puma a "✔"; with LANG
      # unset Ruby would read it as US-ASCII and the first regexp would raise). Bytes that are not
      # UTF-8 become U+FFFD. A file that cannot be read raises Error naming it.
      def read_log(path)
        File.binread(path).force_encoding(Encoding::UTF_8).scrub
      rescue SystemCallError => e
        raise Error, "reading the log #{path}: #{e.message}"
      end
    end

    # A throwaway cluster from Debian's initdb/pg_ctl, trust auth on 127.0.0.1, run as the
    # postgres user when we are root (PostgreSQL refuses to run as root).
    class Postgres
      attr_reader :port, :dir, :log

      def initialize(workdir)
        @dir = File.join(workdir, "postgres")
        @data = File.join(@dir, "data")
        @log = File.join(@dir, "postgres.log")
        @port = Services.free_port
      end

      def url(user: "postgres", password: nil, database: "postgres")
        auth = password ? "#{user}:#{password}" : user
        "postgres://#{auth}@127.0.0.1:#{port}/#{database}"
      end

      def start
        init unless File.exist?(File.join(@data, "PG_VERSION"))
        run!("pg_ctl", "-D", @data, "-l", @log, "-w", "-t", "60",
             "-o", "-p #{port} -c listen_addresses=127.0.0.1 -k #{@dir} -c fsync=off " \
                   "-c synchronous_commit=off -c full_page_writes=off",
             "start")
        ENV["DATABASE_URL"] = url
        Services.wait_until("PostgreSQL to answer on port #{port}") { psql("SELECT 1") == "1" }
        self
      rescue Exception # rubocop:disable Lint/RescueException -- also Ctrl-C mid-start: leave no server behind
        begin
          stop(mode: "immediate")
        rescue Error
          nil
        end
        raise
      end

      def stop(mode: "fast")
        return unless File.exist?(File.join(@data, "postmaster.pid"))

        run!("pg_ctl", "-D", @data, "-m", mode, "-w", "-t", "60", "stop")
      end

      def restart
        stop
        start
      end

      # Runs SQL through psql on loopback and returns its unaligned, tuples-only output.
      def psql(sql)
        out = IO.popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       err: %i[child out], &:read)
        raise Error, "psql failed (#{$?.exitstatus}) running #{sql.inspect}: #{out}" unless $?.success?

        out.strip
      end

      private

      def init
        FileUtils.mkdir_p(@dir)
        FileUtils.chown_R("postgres", "postgres", @dir) if Services.root?
        run!("initdb", "-D", @data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "-N")
      end

      def run!(*cmd)
        path = ENV["PATH"].split(":").include?(pg_bin) ? ENV["PATH"] : "#{pg_bin}:#{ENV['PATH']}"
        full = Services.root? ? ["runuser", "-u", "postgres", "--", "env", "PATH=#{path}", *cmd] : cmd
        out = IO.popen({ "PATH" => path }, full, err: %i[child out], &:read)
        return out if $?.success?

        log = File.exist?(@log) ? Services.read_log(@log).lines.last(20).join : "(no log)"
        raise Error, "PostgreSQL: `#{cmd.join(' ')}` failed (#{$?.exitstatus}):\n#{out}\nlog #{@log}:\n#{log}"
      end

      # Debian keeps initdb and pg_ctl out of PATH, in /usr/lib/postgresql/<version>/bin.
      def pg_bin
        @pg_bin ||= Dir["/usr/lib/postgresql/*/bin"].max_by { |d| d[%r{/(\d+)/bin}, 1].to_i } ||
                    raise(Error, "PostgreSQL server binaries not found; run bin/setup (Debian: apt-get install postgresql)")
      end
    end

    # A server we start as a child process (in its own process group) and stop with TERM, then KILL.
    class SpawnedServer
      attr_reader :pid

      def stop
        return unless @pid

        Process.kill("TERM", @pid)
        Timeout.timeout(10) { Process.waitpid(@pid) }
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      rescue Timeout::Error
        Process.kill("KILL", @pid)
        Process.waitpid(@pid)
      ensure
        @pid = nil
      end

      private

      # Spawns the server and waits until the block says it answers; a server that exits first, or
      # a start interrupted (Ctrl-C), leaves nothing running.
      def spawn_and_wait(name, *cmd, **opts, &ready)
        @pid = Process.spawn(*cmd, **opts, pgroup: true)
        Services.wait_until("#{name} to answer on port #{port} (log: #{@log})", timeout: 30) do
          if Process.waitpid(@pid, Process::WNOHANG)
            @pid = nil
            raise Error, "#{name} exited at start:\n#{File.exist?(@log) ? Services.read_log(@log) : '(no log)'}"
          end
          ready.call
        end
      rescue Exception # rubocop:disable Lint/RescueException -- also Ctrl-C mid-start: leave no server behind
        stop
        raise
      end
    end

    # A real S3 server: Ceph's RADOS Gateway on a one-node cluster made from nothing in its own
    # directory (one monitor, one OSD on memstore, pools of size 1; no manager, which the gateway
    # does not need), every daemon in the foreground on 127.0.0.1 and stopped with the run; a user
    # with the fixed test keys and the test buckets. It checks signatures, payload hashes,
    # Content-MD5, part sizes and part ETags as AWS does, and stores objects with SSE-KMS, over
    # plain HTTP, with the keys KMS_KEYS of its "testing" KMS (Ceph 16 and 18 have no SSE-S3,
    # x-amz-server-side-encryption: AES256, without a Vault).
    class S3Server
      ACCESS_KEY = "HCTESTACCESSKEY0001"
      SECRET_KEY = "hctest/secret/key/for/the/local/rgw/only"
      START_TIMEOUT = 90
      MEMSTORE_BYTES = 8 * 1024**3 # a cap: memstore holds what is stored, in memory
      EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
      POOLS = %w[.rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index
                 default.rgw.buckets.non-ec default.rgw.buckets.data].freeze
      # SSE-KMS keys of the gateway's "testing" KMS (the keys in its configuration, each base64 of
      # 32 bytes), named by x-amz-server-side-encryption-aws-kms-key-id. Test keys, nothing else.
      KMS_KEYS = { "testkey-1" => "dThbyw+iB3TgjA0826CoMbRLgqgG6O5ur+PyBaNiG9g=",
                   "testkey-2" => "u6n6gnpfTv9At2rz3fLhI/XjTYwPHML91BLPb6+5mz0=" }.freeze

      attr_reader :port, :dir, :log

      def initialize(workdir)
        @dir = File.join(workdir, "rgw")
        n = 1
        @dir = File.join(workdir, "rgw-#{n += 1}") while File.exist?(@dir) # an earlier start's, failed
        @log = File.join(@dir, "log", "client.rgw.a.log")
        @port = Services.free_port
        @mon_port = Services.free_port
        @pids = []
      end

      def endpoint = "http://127.0.0.1:#{port}"
      def bucket = BUCKET
      # The radosgw process (its CPU is what bench/capture reports as the S3 server's).
      def pid = @pids.last

      def start
        %w[mon osd/osd.0 run log rgw].each { |sub| FileUtils.mkdir_p(File.join(@dir, sub)) }
        write_config
        make_keyring
        run!("monmaptool", "--create", "--fsid", @fsid, "--addv", "a", "[v2:127.0.0.1:#{@mon_port}]",
             File.join(@dir, "monmap"))
        run!("ceph-mon", *conf, "--mkfs", "-i", "a", "--monmap", File.join(@dir, "monmap"), "--keyring", keyring)
        daemon("ceph-mon", "-i", "a")
        Services.wait_until("the Ceph monitor to answer (log #{@dir}/log)", timeout: START_TIMEOUT) do
          ceph_ok?("mon", "stat")
        end
        run!("ceph", *conf, "--connect-timeout", "30", "osd", "create")
        run!("ceph-osd", *conf, "-i", "0", "--mkfs")
        daemon("ceph-osd", "-i", "0")
        make_pools
        daemon("radosgw", "-n", "client.rgw.a", "--rgw-frontends", "beast endpoint=127.0.0.1:#{port}")
        Services.wait_until("the RADOS Gateway to answer on port #{port} (log: #{@log})", timeout: START_TIMEOUT) do
          check_daemons!
          answers?
        end
        run!("radosgw-admin", *conf, "user", "create", "--uid", "heapcapture", "--display-name", "heapcapture tests",
             "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY)
        [BUCKET, OTHER_BUCKET].each { |name| create_bucket(name) }
        export_env
        self
      rescue Exception # rubocop:disable Lint/RescueException -- also Ctrl-C mid-start: leave no daemon behind
        stop
        raise
      end

      def stop
        # TERM to every daemon first, so that they stop together, then wait for each.
        @pids.reverse_each do |pid|
          Process.kill("TERM", -pid)
        rescue Errno::ESRCH
          nil
        end
        @pids.reverse_each { |pid| Services.stop_group(pid, timeout: 10) } # rubocop:disable Style/CombinableLoops
        @pids = []
      end

      # `radosgw-admin ARGS` against this cluster: its output (JSON for most commands).
      def admin(*args) = run!("radosgw-admin", *conf, *args)

      # The parts RGW stores for multipart uploads not completed, as its bucket index lists them
      # ("_multipart_KEY.UPLOADID.N"): none may be left once an upload is aborted. ListObjects and
      # ListMultipartUploads do not show a part stored after its upload was aborted; this does.
      def multipart_entries(bucket)
        # radosgw-admin's listing may hold bytes that are not UTF-8 (the tests' keys and tags), read
        # with no locale as US-ASCII: scrubbed. Its entries' "tag" can also hold raw control bytes,
        # which no JSON reader takes (7 tests failed on one such listing in a CI run). Only the
        # names are looked at, so they are read by pattern, not parsed.
        # It has also answered nothing, exit status 0 (once in a Ruby 3.4 run): asked again, bounded.
        listing = Services.wait_until("radosgw-admin bucket list --bucket #{bucket} to answer", timeout: 5, interval: 0.3) do
          text = admin("bucket", "list", "--bucket", bucket).dup.force_encoding(Encoding::UTF_8).scrub
          text unless text.strip.empty?
        end
        names = listing.scan(/"name":\s*"((?:[^"\\]|\\.)*)"/).flatten
        entries = listing.scan(/"instance":/).size # one per entry: no name may go unread
        raise "radosgw-admin bucket list: read #{names.size} names of #{entries} entries in #{listing[0, 2000]}" \
          unless names.size == entries

        names.grep(/\A_multipart_/)
      end

      # The keys of the multipart uploads open in bucket (ListMultipartUploads).
      def open_uploads(bucket)
        curl_signed("#{endpoint}/#{bucket}?uploads=").scan(%r{<Upload>.*?<Key>([^<]*)</Key>}m).flatten
      end

      private

      def conf = ["-c", File.join(@dir, "ceph.conf")]
      def keyring = File.join(@dir, "keyring")

      def write_config
        @fsid = File.read("/proc/sys/kernel/random/uuid").strip
        File.write(File.join(@dir, "ceph.conf"), <<~CONF)
          [global]
          fsid = #{@fsid}
          mon host = v2:127.0.0.1:#{@mon_port}
          public addr = 127.0.0.1
          cluster addr = 127.0.0.1
          ms bind ipv4 = true
          ms bind ipv6 = false
          run dir = #{@dir}/run
          admin socket = #{@dir}/run/$name.asok
          pid file = #{@dir}/run/$name.pid
          log file = #{@dir}/log/$name.log
          keyring = #{keyring}
          auth allow insecure global id reclaim = false
          mon data = #{@dir}/mon/$name
          mon allow pool size one = true
          mon allow pool delete = true
          mon warn on pool no redundancy = false
          paxos propose interval = 0.01
          osd pool default size = 1
          osd pool default min size = 1
          osd pool default pg num = 8
          osd pool default pgp num = 8
          osd pool default pg autoscale mode = off
          osd crush chooseleaf type = 0
          osd objectstore = memstore
          memstore device bytes = #{MEMSTORE_BYTES}
          osd data = #{@dir}/osd/$name
          osd class dir = #{class_dir}
          rgw data = #{@dir}/rgw
          rgw enable usage log = false
          rgw crypt require ssl = false
          rgw crypt s3 kms backend = testing
          rgw crypt s3 kms encryption keys = #{KMS_KEYS.map { |id, key| "#{id}=#{key}" }.join(' ')}
          [mon.a]
          mon data = #{@dir}/mon/a
        CONF
      end

      # Where the OSD finds the object classes the gateway calls (Ceph 18 on Debian 13 looks in a
      # relative directory unless told).
      def class_dir
        Dir["/usr/lib/*/rados-classes", "/usr/lib/rados-classes"].find { |dir| File.exist?(File.join(dir, "libcls_rgw.so")) } ||
          raise(Error, "Ceph's object classes (libcls_rgw.so) not found; run bin/setup (Debian: apt-get install ceph-osd)")
      end

      # The gateway makes its pools as it first needs them, the data pools at the first upload,
      # which then took 4 s; made here, in one ceph session, every test sees a warm gateway.
      def make_pools
        commands = POOLS.flat_map { |pool| ["osd pool create #{pool} 8 8", "osd pool application enable #{pool} rgw"] }
        out = IO.popen(["ceph", *conf, "--connect-timeout", "30"], "r+", err: %i[child out]) do |io|
          io.puts(commands)
          io.close_write
          io.read
        end
        raise Error, "the S3 server (Ceph RGW): creating its pools failed:\n#{out}" unless $?.success?
      end

      # One keyring for every daemon and the admin; the monitor imports it when it is made.
      def make_keyring
        run!("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        { "client.admin" => ["mon", "allow *", "osd", "allow *", "mgr", "allow *"],
          "osd.0" => ["mon", "allow profile osd", "osd", "allow *", "mgr", "allow profile osd"],
          "client.rgw.a" => ["mon", "allow rw", "osd", "allow rwx", "mgr", "allow rw"] }.each do |name, caps|
          run!("ceph-authtool", keyring, "--gen-key", "-n", name, *caps.each_slice(2).flat_map { |k, v| ["--cap", k, v] })
        end
      end

      def daemon(*command)
        out = File.join(@dir, "log", "#{command.first}.out")
        @pids << Process.spawn(*command, *conf, "-f", out: out, err: out, pgroup: true)
      end

      def check_daemons!
        @pids.each do |pid|
          next unless Process.waitpid(pid, Process::WNOHANG)

          @pids.delete(pid)
          logs = Dir[File.join(@dir, "log", "*")].map { |f| "#{File.basename(f)}:\n#{Services.read_log(f).lines.last(15).join}" }
          raise Error, "a Ceph daemon exited while the S3 server started:\n#{logs.join("\n")}"
        end
      end

      def ceph_ok?(*args)
        system("ceph", *conf, "--connect-timeout", "5", *args, out: File::NULL, err: File::NULL)
      end

      def answers?
        TCPSocket.open("127.0.0.1", port) do |sock|
          sock.write("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
          sock.wait_readable(2) && sock.readpartial(64).start_with?("HTTP/1.1 200", "HTTP/1.0 200")
        end
      rescue SystemCallError, IOError
        false
      end

      def create_bucket(name) = curl_signed("#{endpoint}/#{name}", "-X", "PUT")

      # A bodiless request signed by curl's own SigV4 (the tests check ours against this server):
      # its answer's body.
      def curl_signed(url, *options)
        run!("curl", "-sS", "--fail-with-body", "-m", "30", *options, "--aws-sigv4", "aws:amz:us-east-1:s3",
             "--user", "#{ACCESS_KEY}:#{SECRET_KEY}", "-H", "x-amz-content-sha256: #{EMPTY_SHA256}", url)
      end

      def run!(*cmd)
        out = IO.popen(cmd, err: %i[child out], &:read)
        return out if $?.success?

        raise Error, "the S3 server (Ceph RGW): `#{cmd.join(' ')}` failed (#{$?.exitstatus}):\n#{out}"
      rescue Errno::ENOENT => e
        raise Error, "the S3 server (Ceph RGW): #{e.message}; run bin/setup (Debian: apt-get install ceph-mon " \
                     "ceph-osd radosgw ceph-common)"
      end

      def export_env
        ENV["AWS_ENDPOINT_URL_S3"] = endpoint
        ENV["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
        ENV["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
        ENV["AWS_REGION"] = "us-east-1"
        ENV["AWS_S3_BUCKET_NAME"] = BUCKET
        ENV.delete("AWS_SESSION_TOKEN")
      end
    end

    # Debian's redis-server on a free loopback port, no persistence (no RDB, no AOF), data in the
    # run's workdir; stopped with the other services.
    class Redis < SpawnedServer
      attr_reader :port, :dir, :log

      def initialize(workdir)
        super()
        @dir = File.join(workdir, "redis")
        @log = File.join(@dir, "redis.log")
        @port = Services.free_port
      end

      def url = "redis://127.0.0.1:#{port}/0"

      def start
        server = ENV["PATH"].split(":").map { |d| File.join(d, "redis-server") }.find { |f| File.executable?(f) } ||
                 raise(Error, "redis-server not found; run bin/setup (Debian: apt-get install redis-server)")
        FileUtils.mkdir_p(@dir)
        spawn_and_wait("redis-server", server, "--bind", "127.0.0.1", "--port", port.to_s, "--dir", @dir,
                       "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", @log,
                       out: File::NULL, err: [@log, "a"]) { ping }
        ENV["REDIS_URL"] = url
        self
      end

      private

      # A PING over a plain socket: no client library needed to know it is up.
      def ping
        TCPSocket.open("127.0.0.1", port) do |sock|
          sock.write("PING\r\n")
          sock.wait_readable(1) && sock.readpartial(64).start_with?("+PONG")
        end
      rescue SystemCallError, IOError
        false
      end
    end
  end
end
