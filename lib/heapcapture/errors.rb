# frozen_string_literal: true

module HeapCapture
  # The classes themselves are defined by the native extension (so C can raise them);
  # this adds what Ruby code reads from them.
  class Error
    # Raise with the bare message (`raise DumpError, "storing the dump: ..."`, or hc_rb_raise in C):
    # the prefix is added here, once, for every HeapCapture error.
    def initialize(message = nil)
      message.nil? ? super() : super(Util.prefixed(message.to_s))
    end
  end

  # What S3 refused: a list, a download, a delete. UploadError, a subclass, is an upload's.
  class S3Error
    # S3's error code ("SignatureDoesNotMatch"), HTTP status (403) and request id, when S3 answered.
    attr_reader :code, :status, :request_id

    def initialize(message = nil, code: nil, status: nil, request_id: nil)
      super(message)
      @code = code
      @status = status
      @request_id = request_id
    end
  end
end
