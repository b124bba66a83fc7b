# frozen_string_literal: true

# The demo's puma: cluster mode, two workers, each armed in on_worker_boot. bin/demo sets PORT,
# DYNO=web.1, DATABASE_URL and the S3 variables (AWS_*).
require "heapcapture"

$stdout.sync = true
HeapCapture.configure { |c| c.logger = Logger.new($stdout) }

workers 2
threads 1, 4
bind "tcp://127.0.0.1:#{ENV.fetch('PORT')}"
rackup File.expand_path("config.ru", __dir__)
environment "production"

on_worker_boot do
  HeapCapture.exclusive
end
