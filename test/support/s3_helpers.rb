# frozen_string_literal: true

require "digest"
require "tmpdir"
require "aws-sdk-s3"

module HCTest
  # What the S3 client's tests share: random files, SHA-256 of files, our client and Debian's
  # aws-sdk-s3 (which reads back what ours stored) pointed at the test server.
  module S3Helpers
    MIB = 1024 * 1024
    PART = 5 * MIB # S3's minimum part size: the smallest multipart uploads

    def setup
      super
      HCTest::Services.s3
      @tmpdir = Dir.mktmpdir("heapcapture-s3-test-")
    end

    def teardown
      FileUtils.rm_rf(@tmpdir) if @tmpdir
      super
    end

    def bucket = HCTest::Services::BUCKET

    def client(**options)
      HeapCapture::S3::Client.new(bucket: bucket, region: ENV.fetch("AWS_REGION"),
                                  endpoint: ENV.fetch("AWS_ENDPOINT_URL_S3"),
                                  access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID"),
                                  secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY"),
                                  part_size: PART, retry_base_delay: 0.01, **options)
    end

    def aws
      @aws ||= Aws::S3::Client.new(endpoint: ENV.fetch("AWS_ENDPOINT_URL_S3"), force_path_style: true,
                                   region: ENV.fetch("AWS_REGION"),
                                   credentials: Aws::Credentials.new(ENV.fetch("AWS_ACCESS_KEY_ID"),
                                                                     ENV.fetch("AWS_SECRET_ACCESS_KEY")))
    end

    # The Ruby source of a client like #client's, for a script another process runs.
    def client_source(endpoint: ENV.fetch("AWS_ENDPOINT_URL_S3"), **options)
      args = { bucket: bucket, region: ENV.fetch("AWS_REGION"), endpoint: endpoint,
               access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID"), secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY"),
               part_size: PART, **options }
      "HeapCapture::S3::Client.new(#{args.map { |name, value| "#{name}: #{value.inspect}" }.join(', ')})"
    end

    # A Ruby process running script with this checkout's lib: the IO to read it by (given a block,
    # the block's value, the IO closed after it, as IO.popen does); its stderr goes to its stdout
    # unless err says where.
    def ruby_script(script, err: %i[child out], &block)
      IO.popen([RbConfig.ruby, "-I", File.expand_path("../../lib", __dir__), "-e", script], err: err, &block)
    end

    # A file of size random bytes, written from /dev/urandom in 1 MiB blocks.
    def random_file(size, name: "random-#{size}")
      path = File.join(@tmpdir, name)
      File.open(path, "wb") do |f|
        IO.copy_stream("/dev/urandom", f, size) if size.positive?
      end
      assert_equal size, File.size(path)
      path
    end

    def sha256_file(path) = Digest::SHA256.file(path).hexdigest

    # The object as aws-sdk-s3 reads it back, hashed (streamed to a file, never held whole).
    def stored_sha256(key)
      target = File.join(@tmpdir, "readback-#{Digest::SHA256.hexdigest(key)[0, 12]}")
      aws.get_object(bucket: bucket, key: key, response_target: target)
      sha256_file(target).tap { File.delete(target) }
    end

    def unique_key(name) = "test/#{name}-#{Process.pid}-#{rand(1 << 30)}"
  end
end
